/**
 * A custom `Ingester`: instead of a content store, every blob of an image goes into one tar file
 * laid out as an OCI image layout (an "oci-archive", which skopeo reads as `oci-archive:FILE`),
 * while the ingester counts the bytes. Core's `openWriter` and `copyBlob` drive it exactly as
 * they drive a store, so retries, verification and commit semantics come for free.
 *
 *   pnpm exec tsx examples/custom-ingester.ts [REF] [--out FILE]
 *
 * Without REF a local registry is started and a generated image archived from it.
 */
import { createWriteStream, type WriteStream } from "node:fs";
import {
  childrenOf,
  copyBlob,
  createDigester,
  DigestMismatchError,
  digestAlgorithm,
  digestHex,
  FailedPreconditionError,
  ingestRef,
  InvalidArgumentError,
  isManifestLike,
  MediaTypes,
  openWriter,
  SizeMismatchError,
  type Descriptor,
  type Digest,
  type Digester,
  type Fetcher,
  type Ingester,
  type Status,
  type Writer,
  type WriterOptions,
} from "@ferry/core";
import { createRegistryResolver } from "@ferry/fetcher";
import { flag, isMain, positionals, withImage } from "./lib/setup.ts";

const BLOCK = 512;

/** A ustar header for a regular file (names up to 100 bytes are plenty for `blobs/sha256/<hex>`). */
function tarHeader(name: string, size: number): Buffer {
  const h = Buffer.alloc(BLOCK);
  const field = (value: string, offset: number, length: number): void => void h.write(value, offset, length, "ascii");
  const octal = (n: number, offset: number, length: number): void => field(`${n.toString(8).padStart(length - 1, "0")}\0`, offset, length);
  field(name, 0, 100);
  octal(0o644, 100, 8);
  octal(0, 108, 8);
  octal(0, 116, 8);
  octal(size, 124, 12);
  octal(0, 136, 12);
  field("        ", 148, 8); // checksum is computed with this field as spaces
  field("0", 156, 1);
  field("ustar\0", 257, 6);
  field("00", 263, 2);
  let sum = 0;
  for (const b of h) sum += b;
  field(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8);
  return h;
}

/**
 * Writes each ingest as one tar entry, one at a time (a tar is sequential: a second `writer()`
 * waits until the first is committed or closed). An entry needs its size up front, so `total`
 * is required; a tar cannot be rewound, so only an empty writer can be truncated and a failed
 * commit leaves the archive unusable (`broken` says so).
 */
export class TarIngester implements Ingester {
  readonly #out: WriteStream;
  #turn: Promise<void> = Promise.resolve();
  /** Payload bytes written (without tar headers and padding). */
  bytes = 0;
  /** Entries in the archive, in order. */
  readonly entries: string[] = [];
  broken = false;

  constructor(path: string) {
    this.#out = createWriteStream(path);
  }

  async writer(options: WriterOptions): Promise<Writer> {
    if (!options.total) throw new InvalidArgumentError(`${options.ref}: a tar entry needs its size (total) up front`);
    let release!: () => void;
    const previous = this.#turn;
    this.#turn = new Promise((r) => (release = r));
    await previous;
    const name = options.expected ? `blobs/${digestAlgorithm(options.expected)}/${digestHex(options.expected)}` : options.ref;
    await this.#write(tarHeader(name, options.total));
    return new TarEntryWriter(this, options, name, release);
  }

  /** Add a small file (index.json, oci-layout). */
  async addFile(name: string, data: Uint8Array): Promise<void> {
    const w = await this.writer({ ref: name, total: data.byteLength });
    await w.write(data);
    await w.commit(data.byteLength);
  }

  /** End the archive (two zero blocks) and close the file. */
  async finish(): Promise<void> {
    await this.#turn;
    await this.#write(Buffer.alloc(2 * BLOCK));
    await new Promise<void>((resolve, reject) => this.#out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  }

  /** @internal */
  async #write(chunk: Uint8Array): Promise<void> {
    if (!this.#out.write(chunk)) await new Promise<void>((r) => this.#out.once("drain", () => r()));
  }

  /** @internal used by the writers */
  write(chunk: Uint8Array): Promise<void> {
    return this.#write(chunk);
  }
}

class TarEntryWriter implements Writer {
  readonly ref: string;
  readonly #tar: TarIngester;
  readonly #options: WriterOptions;
  readonly #name: string;
  readonly #release: () => void;
  readonly #startedAt = new Date();
  #digester: Digester;
  #offset = 0;
  #updatedAt = new Date();
  #closed = false;

  constructor(tar: TarIngester, options: WriterOptions, name: string, release: () => void) {
    this.ref = options.ref;
    this.#tar = tar;
    this.#options = options;
    this.#name = name;
    this.#release = release;
    this.#digester = createDigester(options.expected ? digestAlgorithm(options.expected) : "sha256");
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.#offset + chunk.byteLength > (this.#options.total as number)) {
      throw new SizeMismatchError(`${this.ref}: more than the ${this.#options.total} bytes announced`);
    }
    this.#digester.update(chunk);
    await this.#tar.write(chunk);
    this.#offset += chunk.byteLength;
    this.#tar.bytes += chunk.byteLength;
    this.#updatedAt = new Date();
  }

  digest(): Digest {
    return this.#digester.digest();
  }

  async status(): Promise<Status> {
    return {
      ref: this.ref,
      offset: this.#offset,
      total: this.#options.total ?? 0,
      ...(this.#options.expected ? { expected: this.#options.expected } : {}),
      startedAt: this.#startedAt,
      updatedAt: this.#updatedAt,
    };
  }

  async truncate(_size: 0): Promise<void> {
    if (this.#offset > 0) throw new FailedPreconditionError(`${this.ref}: a tar entry cannot be rewound`);
  }

  async commit(size?: number, expected?: Digest): Promise<void> {
    try {
      const total = this.#options.total as number;
      if (this.#offset !== total || (size !== undefined && size !== total)) {
        this.#tar.broken = true;
        throw new SizeMismatchError(`${this.ref}: wrote ${this.#offset} of ${total} bytes`);
      }
      const want = expected ?? this.#options.expected;
      if (want !== undefined && this.digest() !== want) {
        this.#tar.broken = true;
        throw new DigestMismatchError(`${this.ref}: got ${this.digest()}, expected ${want}`);
      }
      const pad = (BLOCK - (total % BLOCK)) % BLOCK;
      if (pad > 0) await this.#tar.write(Buffer.alloc(pad));
      this.#tar.entries.push(this.#name);
    } finally {
      await this.close();
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // An entry left short corrupts everything after it.
    if (!this.#tar.entries.includes(this.#name) && this.#offset < (this.#options.total as number)) this.#tar.broken = true;
    this.#release();
  }
}

/** Every descriptor of the graph under `root`, children before parents (all platforms). */
async function walk(fetcher: Fetcher, root: Descriptor, signal: AbortSignal | undefined): Promise<Descriptor[]> {
  const out: Descriptor[] = [];
  const seen = new Set<string>();
  const visit = async (d: Descriptor): Promise<void> => {
    if (seen.has(d.digest)) return;
    seen.add(d.digest);
    if (isManifestLike(d.mediaType)) {
      const chunks: Buffer[] = [];
      for await (const c of await fetcher.fetch(d, signal ? { signal } : {})) chunks.push(c as Buffer);
      for (const child of childrenOf(d, Buffer.concat(chunks))) await visit(child);
    }
    out.push(d);
  };
  await visit(root);
  return out;
}

/** Archive `ref` into the tar file `out` (an OCI layout inside a tar); `bytes` counts the blobs' bytes. */
export async function archiveImage(ref: string, out: string, signal?: AbortSignal): Promise<{ root: Descriptor; bytes: number; entries: string[] }> {
  const resolver = createRegistryResolver();
  const tar = new TarIngester(out);
  try {
    const { name, descriptor: root } = await resolver.resolve(ref, signal ? { signal } : {});
    const fetcher = await resolver.fetcher(name);
    for (const d of await walk(fetcher, root, signal)) {
      const writer = await openWriter(tar, { ref: ingestRef(d), total: d.size, expected: d.digest, ...(signal ? { signal } : {}) });
      // A seek function: copyBlob asks for the offset the writer is at (always 0 for a tar).
      await copyBlob(writer, (offset) => fetcher.fetch(d, { offset, ...(signal ? { signal } : {}) }), { size: d.size, expected: d.digest, ...(signal ? { signal } : {}) });
    }
    // What the ingester counted for the image's blobs (the two layout files below come on top).
    const blobBytes = tar.bytes;
    await tar.addFile("oci-layout", Buffer.from(JSON.stringify({ imageLayoutVersion: "1.0.0" })));
    const index = {
      schemaVersion: 2,
      mediaType: MediaTypes.OciIndex,
      manifests: [{ ...root, annotations: { "org.opencontainers.image.ref.name": ref.split(":").pop() ?? "latest" } }],
    };
    await tar.addFile("index.json", Buffer.from(JSON.stringify(index)));
    await tar.finish();
    return { root, bytes: blobBytes, entries: tar.entries };
  } finally {
    await resolver.close();
  }
}

if (isMain(import.meta.url)) {
  const args = process.argv.slice(2);
  await withImage(positionals(args, ["--out"])[0], "example/archive:1", { layers: 2, layerSize: 2 ** 20 }, async (ref) => {
    const out = flag(args, "--out") ?? "image.tar";
    const r = await archiveImage(ref, out);
    console.log(`archived ${ref} ${r.root.digest} into ${out}: ${r.entries.length} entries, ${r.bytes} bytes counted`);
  });
}
