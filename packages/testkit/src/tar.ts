/**
 * A minimal tar writer for one regular file: enough for a real, extractable image layer
 * (ustar, root-owned, mtime 0; sizes of 8 GiB and more use the GNU base-256 size field).
 */
import { InvalidArgumentError } from "@ferry/core";

const BLOCK = 512;

/** Total bytes of a tar holding one file of `size` bytes (header, padded data, end blocks). */
export function tarSize(size: number): number {
  return BLOCK + Math.ceil(size / BLOCK) * BLOCK + 2 * BLOCK;
}

/** The 512-byte ustar header of a regular file. */
export function tarHeader(path: string, size: number, mode = 0o644): Buffer {
  const h = Buffer.alloc(BLOCK);
  let name = path;
  let prefix = "";
  if (Buffer.byteLength(name) > 100) {
    const cut = path.lastIndexOf("/", 155);
    if (cut <= 0 || Buffer.byteLength(path.slice(cut + 1)) > 100) throw new InvalidArgumentError(`tar path too long: ${path}`);
    prefix = path.slice(0, cut);
    name = path.slice(cut + 1);
  }
  h.write(name, 0, 100, "utf8");
  octal(h, 100, 8, mode);
  octal(h, 108, 8, 0); // uid
  octal(h, 116, 8, 0); // gid
  if (size < 8 ** 11) {
    octal(h, 124, 12, size);
  } else {
    // GNU base-256: high bit of the first byte set, big-endian value in the rest.
    let v = BigInt(size);
    for (let i = 135; i > 124; i--) {
      h[i] = Number(v & 0xffn);
      v >>= 8n;
    }
    h[124] = 0x80;
  }
  octal(h, 136, 12, 0); // mtime
  h.write("        ", 148, 8, "ascii"); // checksum placeholder: spaces
  h.write("0", 156, 1, "ascii"); // regular file
  h.write("ustar\u000000", 257, 8, "binary");
  h.write("root", 265, 32, "ascii");
  h.write("root", 297, 32, "ascii");
  octal(h, 329, 8, 0);
  octal(h, 337, 8, 0);
  h.write(prefix, 345, 155, "utf8");
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, "0") + "\u0000 ", 148, 8, "binary");
  return h;
}

function octal(buf: Buffer, offset: number, width: number, value: number): void {
  buf.write(value.toString(8).padStart(width - 1, "0") + "\u0000", offset, width, "ascii");
}

/** Wrap a file's content stream (exactly `size` bytes) into a complete tar stream. */
export async function* tarOneFile(path: string, size: number, content: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  yield tarHeader(path, size);
  let seen = 0;
  for await (const chunk of content) {
    seen += chunk.byteLength;
    yield chunk;
  }
  if (seen !== size) throw new InvalidArgumentError(`tar content was ${seen} bytes, header says ${size}`);
  const pad = (BLOCK - (size % BLOCK)) % BLOCK;
  yield Buffer.alloc(pad + 2 * BLOCK);
}
