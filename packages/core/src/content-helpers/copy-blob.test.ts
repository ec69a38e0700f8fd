/**
 * copyBlob's lockstep path: a source with `readInto` fills the writer's lent `window()` (or a
 * buffer of copyBlob's own), one write per fill. The conformance suite covers the other sources.
 */
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import type { Status, Writer } from "../content.ts";
import { digestOf, type Digest } from "../digest.ts";
import { DigestMismatchError, isNotFound, NotFoundError } from "../errors.ts";
import { lendingWriter } from "../testsuite/lending-writer.ts";
import { copyBlob } from "./copy-blob.ts";

const data = Buffer.alloc(300_000);
for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 9)) & 0xff;
const digest = digestOf(data);

/** A source that serves `data` from `offset` through readInto only (its Readable side fails). */
function intoSource(offset = 0, opts: { failAt?: number; fills?: number[] } = {}) {
  let pos = offset;
  const stream = new Readable({
    read() {
      this.destroy(new Error("the Readable side must not be used"));
    },
  });
  // As ByteStream.readInto asks: failures reach the reader as rejections, not as 'error' events.
  stream.on("error", () => {});
  return Object.assign(
    stream,
    {
      async readInto(buf: Uint8Array): Promise<number> {
        if (opts.failAt !== undefined && pos >= opts.failAt) throw Object.assign(new Error("connection reset"), { code: "Network" });
        const end = Math.min(data.length, pos + buf.byteLength, opts.failAt ?? Infinity);
        buf.set(data.subarray(pos, end));
        const n = end - pos;
        pos = end;
        opts.fills?.push(n);
        return n;
      },
    },
  );
}

/**
 * Just enough of a content store for these cases: ingests kept by ref across writers, a commit
 * that checks the digest. (store-memory depends on core, so core's tests do not use it.)
 */
function createMemoryStore() {
  const ingests = new Map<string, Buffer[]>();
  const blobs = new Map<Digest, number>();
  return {
    async writer(o: { ref: string; total?: number; expected?: Digest }): Promise<Writer> {
      const parts = ingests.get(o.ref) ?? [];
      ingests.set(o.ref, parts);
      const bytes = () => Buffer.concat(parts);
      return {
        ref: o.ref,
        write: async (c) => void parts.push(Buffer.from(c)), // a copy: the caller may reuse its buffer
        digest: () => digestOf(bytes()),
        status: async (): Promise<Status> => ({ ref: o.ref, offset: bytes().length, total: o.total ?? 0, startedAt: new Date(), updatedAt: new Date() }),
        truncate: async () => void (parts.length = 0),
        commit: async (_size, expected) => {
          const got = digestOf(bytes());
          if (got !== (expected ?? o.expected)) throw new DigestMismatchError(`got ${got}`);
          blobs.set(got, bytes().length);
          ingests.delete(o.ref);
        },
        close: async () => {},
      };
    },
    async info(d: Digest): Promise<{ size: number }> {
      const size = blobs.get(d);
      if (size === undefined) throw new NotFoundError(`${d} not found`);
      return { size };
    },
    async status(ref: string): Promise<{ offset: number }> {
      return { offset: Buffer.concat(ingests.get(ref) ?? []).length };
    },
  };
}


describe("copyBlob with a readInto source", () => {
  it("reads straight into the writer's window and writes back the filled prefix", async () => {
    const store = createMemoryStore();
    const window = new Uint8Array(64 * 1024);
    const writes: Uint8Array[] = [];
    const progress: number[] = [];
    const w = lendingWriter(await store.writer({ ref: "r", total: data.length, expected: digest }), window, writes);
    expect(await copyBlob(w, () => intoSource(), { size: data.length, expected: digest, onProgress: (o) => progress.push(o) })).toBe("written");
    expect(writes.length).toBe(Math.ceil(data.length / window.byteLength));
    for (const c of writes) expect(c.buffer === window.buffer && c.byteOffset === 0).toBe(true);
    expect(progress.at(-1)).toBe(data.length);
    expect((await store.info(digest)).size).toBe(data.length);
  });

  it("gives a writer that lends nothing the stream's own chunks (no buffer of ours, no extra copy), resuming at the ingest's offset", async () => {
    const store = createMemoryStore();
    const first = await store.writer({ ref: "r", total: data.length, expected: digest });
    await first.write(data.subarray(0, 100_000));
    await first.close();
    const fills: number[] = [];
    const opened: number[] = [];
    const w = await store.writer({ ref: "r", total: data.length, expected: digest });
    await copyBlob(w, (offset) => (opened.push(offset), Object.assign(Readable.from([data.subarray(offset)]), { readInto: intoSource(offset, { fills }).readInto })), { size: data.length, expected: digest });
    expect(opened).toEqual([100_000]);
    expect(fills).toEqual([]);
    expect((await store.info(digest)).size).toBe(data.length);
  });

  it("when a lending writer lends nothing for a moment, reads into a buffer of its own sized to what is left", async () => {
    const store = createMemoryStore();
    const window = new Uint8Array(64 * 1024);
    const writes: Uint8Array[] = [];
    const inner = await store.writer({ ref: "r", total: data.length, expected: digest });
    let calls = 0;
    const w = { ...lendingWriter(inner, window, writes), window: () => (calls++ % 2 === 0 ? window : undefined) };
    expect(await copyBlob(w, () => intoSource(), { size: data.length, expected: digest })).toBe("written");
    const own = writes.filter((c) => c.buffer !== window.buffer);
    expect(own.length).toBeGreaterThan(0);
    // Sized to the blob's remaining bytes at most: never a 1 MiB buffer for a small blob.
    for (const c of own) expect(c.buffer.byteLength).toBeLessThanOrEqual(data.length);
    expect((await store.info(digest)).size).toBe(data.length);
  });

  it("a failing read fails the copy, closes the writer and keeps the ingest for a resume", async () => {
    const store = createMemoryStore();
    const window = new Uint8Array(32 * 1024);
    const w = lendingWriter(await store.writer({ ref: "r", total: data.length, expected: digest }), window, []);
    await expect(copyBlob(w, () => intoSource(0, { failAt: 150_000 }), { size: data.length, expected: digest })).rejects.toMatchObject({ code: "Network" });
    await expect(store.info(digest)).rejects.toSatisfy(isNotFound);
    expect((await store.status("r")).offset).toBe(150_000);
    const again = lendingWriter(await store.writer({ ref: "r", total: data.length, expected: digest }), window, []);
    expect(await copyBlob(again, (o) => intoSource(o), { size: data.length, expected: digest })).toBe("written");
  });

  it("an abort stops the loop with Aborted", async () => {
    const store = createMemoryStore();
    const ac = new AbortController();
    const w = lendingWriter(await store.writer({ ref: "r", total: data.length, expected: digest }), new Uint8Array(32 * 1024), []);
    const run = copyBlob(w, () => intoSource(), { size: data.length, signal: ac.signal, onProgress: (o) => o > 0 && ac.abort() });
    await expect(run).rejects.toMatchObject({ code: "Aborted" });
  });
});
