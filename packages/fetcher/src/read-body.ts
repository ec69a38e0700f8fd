import type { Readable } from "node:stream";
import { FerryError, SizeMismatchError } from "@ferry/core";

/**
 * Read a small body whole, refusing more than `max` bytes: the declared Content-Length is checked
 * before reading and the running count while reading, so a lying server cannot make us buffer more.
 */
export async function readCapped(
  body: Readable,
  max: number,
  what: string,
  contentLength?: number,
): Promise<Uint8Array> {
  if (contentLength !== undefined && contentLength > max) {
    body.destroy();
    throw new FerryError("InvalidManifest", `${what} is ${contentLength} bytes, over the ${max}-byte limit`, {
      details: { size: contentLength, max },
    });
  }
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    n += chunk.byteLength;
    if (n > max) {
      body.destroy();
      throw new FerryError("InvalidManifest", `${what} exceeds the ${max}-byte limit`, { details: { max } });
    }
    chunks.push(chunk);
  }
  if (contentLength !== undefined && n !== contentLength) {
    throw new SizeMismatchError(`${what}: got ${n} bytes, Content-Length said ${contentLength}`, {
      details: { expected: contentLength, actual: n },
    });
  }
  return Buffer.concat(chunks, n);
}
