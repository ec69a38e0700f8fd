/**
 * Direct writes: ingests declaring at least `directWriteMinBytes` write whole blocks with
 * O_DIRECT from page-aligned staging buffers and partial blocks through the page cache. These
 * tests prove the bytes on disk are exact whatever the chunk sizes, flush points, resumes and
 * checkpoints, and that a refused direct write falls back without losing a byte.
 */
import { readFile } from "node:fs/promises";
import { createHash, randomBytes } from "node:crypto";
import { join } from "node:path";
import { directIoSupported } from "@ferry/testkit";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { parseDigest, type Digest } from "@ferry/core";
import { contentStoreSuite } from "@ferry/core/testsuite";
import { hashWasmDigesters, ingestKey, openFsStore, type FsStoreOptions, type FsWriter } from "../src/index.ts";
import { FsStore } from "../src/fs-store.ts";
import { readCheckpoint } from "../src/ingest-files.ts";
import { tempDir } from "./helpers.ts";

declare const WebAssembly: { Memory: new (d: { initial: number; maximum: number }) => { buffer: ArrayBuffer } };

const KiB = 1024;
const MiB = 1024 * KiB;

const sha256 = (b: Uint8Array): Digest => parseDigest(`sha256:${createHash("sha256").update(b).digest("hex")}`);


/** Chunk sizes from 1 byte to 300 KiB, fixed by a seed so a failure can be replayed. */
function* chunksOf(data: Buffer, seed: number): Generator<Buffer> {
  let s = seed;
  let pos = 0;
  while (pos < data.length) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    const n = s % 7 === 0 ? 1 + (s % 300) * KiB : 1 + (s % 70_000);
    yield data.subarray(pos, pos + n);
    pos += n;
  }
}

/** Where a committed blob lives in the OCI layout (blobs/<alg>/<hex>). */
const blobFile = (store: { root: string }, d: Digest): string => join(store.root, "blobs", ...d.split(":"));

let dir: { path: string; cleanup: () => Promise<void> };
let direct: boolean;
beforeEach(async () => {
  dir = await tempDir("ferry-fs-direct-");
  direct = directIoSupported(dir.path);
});
afterEach(async () => {
  await dir.cleanup();
});

const opts = (o: FsStoreOptions = {}): FsStoreOptions => ({ directWriteMinBytes: 0, smallBlobBytes: 0, fsync: false, ...o });

describe("which ingests write directly", () => {
  it("those declaring at least directWriteMinBytes, on a filesystem that accepts O_DIRECT", async () => {
    const store = await openFsStore(dir.path, { directWriteMinBytes: 2 * MiB, smallBlobBytes: 0 });
    const big = (await store.writer({ ref: "big", total: 2 * MiB })) as FsWriter;
    const small = (await store.writer({ ref: "small", total: 2 * MiB - 1 })) as FsWriter;
    const unknown = (await store.writer({ ref: "unknown" })) as FsWriter;
    expect(big.direct).toBe(direct);
    expect(small.direct).toBe(false);
    expect(unknown.direct).toBe(false);
    for (const w of [big, small, unknown]) await w.close();
    const off = await openFsStore(dir.path, { directWriteMinBytes: Number.POSITIVE_INFINITY, smallBlobBytes: 0 });
    const w = (await off.writer({ ref: "off", total: 64 * MiB })) as FsWriter;
    expect(w.direct).toBe(false);
    await w.close();
  });

  it("the default threshold is 8 MiB", async () => {
    const store = await openFsStore(dir.path);
    const w = (await store.writer({ ref: "r", total: 8 * MiB })) as FsWriter;
    const v = (await store.writer({ ref: "v", total: 8 * MiB - 1 })) as FsWriter;
    expect([w.direct, v.direct]).toEqual([direct, false]);
    await w.close();
    await v.close();
  });

  it("rejects a negative or fractional threshold with InvalidArgument", async () => {
    await expect(openFsStore(dir.path, { directWriteMinBytes: -1 })).rejects.toMatchObject({ code: "InvalidArgument" });
    await expect(openFsStore(dir.path, { directWriteMinBytes: 1.5 })).rejects.toMatchObject({ code: "InvalidArgument" });
  });
});

describe("bytes on disk are exact", () => {
  it.each([
    ["1 MiB batches", 1 * MiB, 1],
    ["64 KiB batches", 64 * KiB, 2],
    ["a batch that is not a multiple of 4 KiB", 100_000, 3],
  ])("random chunk sizes, %s", async (_, writeBatchBytes, seed) => {
    const store = await openFsStore(dir.path, opts({ writeBatchBytes }));
    const data = randomBytes(5 * MiB + 12_345);
    const w = (await store.writer({ ref: "r", total: data.length })) as FsWriter;
    expect(w.direct).toBe(direct);
    for (const c of chunksOf(data, seed)) await w.write(c);
    await w.commit(data.length, sha256(data));
    expect(Buffer.compare(await readFile(blobFile(store, sha256(data))), data)).toBe(0);
  });

  it("flushes that end inside a block, then more writes: another store sees each flushed prefix", async () => {
    const store = await openFsStore(dir.path, opts({ writeBatchBytes: 64 * KiB }));
    const other = await openFsStore(dir.path, opts());
    const data = randomBytes(3 * MiB);
    const w = (await store.writer({ ref: "r", total: data.length })) as FsWriter;
    const data_ = join(dir.path, "ingest", ingestKey("r"), "data");
    let pos = 0;
    for (const cut of [1, 4095, 4096, 4097, 70_001, 70_002, 200_000, 1 * MiB + 3, 2 * MiB + 4095]) {
      for (const c of chunksOf(data.subarray(pos, cut), cut)) await w.write(c);
      pos = cut;
      await w.flush!();
      expect((await other.status("r")).offset).toBe(cut);
      expect(Buffer.compare(await readFile(data_), data.subarray(0, cut))).toBe(0);
    }
    await w.write(data.subarray(pos));
    expect(w.digest()).toBe(sha256(data));
    await w.commit(data.length, sha256(data));
    expect(Buffer.compare(await readFile(blobFile(store, sha256(data))), data)).toBe(0);
  });

  it("a resume at an offset inside a block goes on directly and ends exact", async () => {
    for (const stop of [100_001, 4096 * 30, 1 * MiB + 1]) {
      const data = randomBytes(2 * MiB + 777);
      const ref = `r${stop}`;
      const a = await openFsStore(dir.path, opts({ writeBatchBytes: 64 * KiB }));
      const w = (await a.writer({ ref, total: data.length })) as FsWriter;
      for (const c of chunksOf(data.subarray(0, stop), stop)) await w.write(c);
      await w.close();
      const b = await openFsStore(dir.path, opts({ writeBatchBytes: 64 * KiB }));
      const r = (await b.writer({ ref, total: data.length })) as FsWriter;
      expect(r.resumed.offset).toBe(stop);
      expect(r.direct).toBe(direct);
      for (const c of chunksOf(data.subarray(stop), 7)) await r.write(c);
      await r.commit(data.length, sha256(data));
      expect(Buffer.compare(await readFile(blobFile(b, sha256(data))), data)).toBe(0);
    }
  });

  it("truncate(0) after a flush inside a block, then new bytes: only the new bytes are kept", async () => {
    const store = await openFsStore(dir.path, opts({ writeBatchBytes: 16 * KiB }));
    const w = (await store.writer({ ref: "r", total: 0 })) as FsWriter;
    await w.write(randomBytes(50_001));
    await w.flush!();
    await w.truncate(0);
    const data = randomBytes(300_000);
    for (const c of chunksOf(data, 5)) await w.write(c);
    await w.commit(data.length, sha256(data));
    expect(Buffer.compare(await readFile(blobFile(store, sha256(data))), data)).toBe(0);
  });

  it("hash-wasm checkpoints land on batch boundaries and a resume restores from them", async () => {
    const o = opts({ writeBatchBytes: 16 * KiB, checkpointBytes: 64 * KiB, digesters: hashWasmDigesters });
    const store = await openFsStore(dir.path, o);
    const data = randomBytes(1 * MiB + 5000);
    const w = (await store.writer({ ref: "r", total: data.length })) as FsWriter;
    const half = 600_000;
    // 10 KiB chunks: batches are cut inside chunks, where the rest of a chunk is hashed ahead.
    for (let p = 0; p < half; p += 10 * KiB) await w.write(data.subarray(p, Math.min(p + 10 * KiB, half)));
    const cp = await readCheckpoint(join(dir.path, "ingest", ingestKey("r")));
    expect(cp).toBeDefined();
    expect(cp!.offset % (16 * KiB)).toBe(0);
    expect(cp!.offset).toBeGreaterThanOrEqual(64 * KiB);
    await w.close();
    const again = await openFsStore(dir.path, o);
    const r = (await again.writer({ ref: "r", total: data.length })) as FsWriter;
    expect(r.resumed.offset).toBe(half);
    expect(r.resumed.restoredFromCheckpoint).toBe(half); // close checkpoints at the flushed end
    await r.write(data.subarray(half));
    await r.commit(data.length, sha256(data));
    expect(Buffer.compare(await readFile(blobFile(again, sha256(data))), data)).toBe(0);
  });
});

describe("with the hash worker (hashWorkerMinBytes)", () => {
  it("aligned batches go directly, the rest through the page cache; the bytes are exact", async () => {
    const store = await openFsStore(dir.path, opts({ writeBatchBytes: 64 * KiB, hashWorkerMinBytes: 1 }));
    const other = await openFsStore(dir.path, opts());
    const data = randomBytes(3 * MiB + 999);
    const w = (await store.writer({ ref: "r", total: data.length })) as FsWriter;
    expect(w.direct).toBe(direct);
    let pos = 0;
    // A flush inside a block: the batches after it start unaligned and use the page cache.
    for (const cut of [MiB + 5, 2 * MiB + 70_001, data.length]) {
      for (const c of chunksOf(data.subarray(pos, cut), cut)) await w.write(c);
      pos = cut;
      await w.flush!();
      expect((await other.status("r")).offset).toBe(cut);
    }
    expect(w.digest()).toBe(sha256(data));
    await w.commit(data.length, sha256(data));
    expect(Buffer.compare(await readFile(blobFile(store, sha256(data))), data)).toBe(0);
  });

  it("stays off below directWriteMinBytes", async () => {
    const store = await openFsStore(dir.path, { hashWorkerMinBytes: 1, directWriteMinBytes: 4 * MiB, smallBlobBytes: 0 });
    const w = (await store.writer({ ref: "r", total: 4 * MiB - 1 })) as FsWriter;
    expect(w.direct).toBe(false);
    await w.close();
  });
});

/** Calls of the spied `set` that copied at least one byte into one of `buffers`. */
function copiesInto(set: { mock: { contexts: unknown[]; calls: unknown[][] } }, buffers: Set<ArrayBufferLike>): number {
  return set.mock.contexts.filter((c, i) => buffers.has((c as Uint8Array).buffer) && ((set.mock.calls[i]?.[0] as ArrayLike<number>)?.length ?? 0) > 0).length;
}

describe("window(): the batch lent to a source (copy-free receive)", () => {
  it.each([
    ["hashed on this thread (lent when writing directly)", {}, false],
    ["hashed on the hash worker (its shared batch, always lent)", { hashWorkerMinBytes: 1 }, true],
  ])("%s: lends the free part of the batch; a prefix written back is stored without a copy, mixed with plain writes", async (_, extra, alwaysLent) => {
    const store = await openFsStore(dir.path, opts({ writeBatchBytes: 64 * KiB, ...extra }));
    const lends = direct || alwaysLent;
    const data = randomBytes(MiB + 4097);
    const w = (await store.writer({ ref: "r", total: data.length })) as FsWriter;
    const set = vi.spyOn(Uint8Array.prototype, "set");
    const lentBuffers = new Set<ArrayBufferLike>();
    let pos = 0;
    let s = 11;
    let lent = 0;
    try {
      while (pos < data.length) {
        s = (s * 1103515245 + 12345) % 2 ** 31;
        const r = s >>> 8; // the LCG's low bits cycle too fast to choose with
        const win = w.window();
        if (!lends) expect(win).toBeUndefined();
        if (win === undefined || r % 4 === 0) {
          const n = Math.min(data.length - pos, 1 + (r % 30_000));
          await w.write(data.subarray(pos, pos + n));
          pos += n;
          continue;
        }
        expect(win.byteLength).toBeGreaterThan(0);
        lentBuffers.add(win.buffer);
        // Fill a prefix of the window as a socket read would, then hand that prefix back.
        const n = Math.min(win.byteLength, data.length - pos, r % 3 === 0 ? win.byteLength : 1 + (r % 50_000));
        data.copy(Buffer.from(win.buffer, win.byteOffset, n), 0, pos, pos + n);
        const copiesBefore = copiesInto(set, lentBuffers);
        await w.write(win.subarray(0, n));
        // No TypedArray.set into a batch for these bytes: they were already in place.
        expect(copiesInto(set, lentBuffers)).toBe(copiesBefore);
        // The next window starts where this one was filled (same batch) or is a fresh batch.
        const next = w.window();
        if (n < win.byteLength && next !== undefined) expect(next.byteOffset).toBe(win.byteOffset + n);
        pos += n;
        lent += n;
      }
    } finally {
      set.mockRestore();
    }
    if (lends) expect(lent).toBeGreaterThan(data.length / 2);
    expect(w.digest()).toBe(sha256(data));
    await w.commit(data.length, sha256(data));
    expect(Buffer.compare(await readFile(blobFile(store, sha256(data))), data)).toBe(0);
  });

  it("lends nothing through the page cache (main-thread hash), with writes queued, or after close", async () => {
    const paged = await openFsStore(dir.path, opts({ directWriteMinBytes: Infinity }));
    const p = (await paged.writer({ ref: "paged", total: MiB })) as FsWriter;
    expect(p.window()).toBeUndefined();
    await p.close();
    const store = await openFsStore(dir.path, opts({ writeBatchBytes: 64 * KiB }));
    const w = (await store.writer({ ref: "r", total: MiB })) as FsWriter;
    const pending = w.write(randomBytes(200 * KiB)); // fills past the batch: a write in flight
    expect(w.window()).toBeUndefined();
    await pending;
    if (direct) expect(w.window()).toBeDefined();
    await w.close();
    expect(w.window()).toBeUndefined();
  });
});

describe("a direct write the kernel refuses", () => {
  it("is written through the page cache instead, and the store stops trying", async () => {
    // Memory 16 bytes past a page boundary: the kernel answers EINVAL to O_DIRECT writes from it.
    const misaligned = (size: number): Buffer => Buffer.allocUnsafeSlow(size + 4096 + 16).subarray(16, 16 + size);
    const store = new FsStore(dir.path, { ...opts({ writeBatchBytes: 64 * KiB }), allocateAligned: misaligned });
    await store.ready();
    const data = randomBytes(1 * MiB + 99);
    const w = (await store.writer({ ref: "a", total: data.length })) as FsWriter;
    expect(w.direct).toBe(direct);
    for (const c of chunksOf(data, 11)) await w.write(c);
    expect(w.direct).toBe(false);
    await w.commit(data.length, sha256(data));
    expect(Buffer.compare(await readFile(blobFile(store, sha256(data))), data)).toBe(0);
    const next = (await store.writer({ ref: "b", total: data.length })) as FsWriter;
    expect(next.direct).toBe(false);
    await next.close();
  });
});

describe("when aligned memory cannot be had", () => {
  it.each([
    ["no batch at all: the writer goes through the page cache", 0, false],
    ["one batch, no second: batches are written one at a time", 1, true],
  ])("%s", async (_, allowed, expectDirect) => {
    let given = 0;
    const allocate = (size: number): Buffer => {
      if (given++ >= allowed) throw new RangeError("WebAssembly.Memory(): could not allocate memory");
      return Buffer.from(new WebAssembly.Memory({ initial: Math.ceil(size / 65536), maximum: Math.ceil(size / 65536) }).buffer, 0, size);
    };
    const store = new FsStore(dir.path, { ...opts({ writeBatchBytes: 64 * KiB }), allocateAligned: allocate });
    await store.ready();
    const data = randomBytes(MiB + 4097);
    const w = (await store.writer({ ref: "r", total: data.length })) as FsWriter;
    expect(w.direct).toBe(direct && expectDirect);
    for (const c of chunksOf(data, 3)) await w.write(c);
    await w.commit(data.length, sha256(data));
    expect(Buffer.compare(await readFile(blobFile(store, sha256(data))), data)).toBe(0);
  });
});

describe("directWriteMemoryBytes: the budget for second batches", () => {
  /** A store counting the aligned batches it allocates, and two direct writers fed in turns. */
  async function batchesFor(directWriteMemoryBytes: number | undefined): Promise<number> {
    let allocated = 0;
    const allocate = (size: number): Buffer => {
      allocated++;
      return Buffer.from(new WebAssembly.Memory({ initial: Math.ceil(size / 65536), maximum: Math.ceil(size / 65536) }).buffer, 0, size);
    };
    const o = opts({ writeBatchBytes: 64 * KiB, ...(directWriteMemoryBytes === undefined ? {} : { directWriteMemoryBytes }) });
    const store = new FsStore(dir.path, { ...o, allocateAligned: allocate });
    await store.ready();
    const blobs = [randomBytes(MiB + 4097), randomBytes(MiB + 12345)];
    const writers = await Promise.all(blobs.map(async (b, i) => (await store.writer({ ref: `r${i}`, total: b.length })) as FsWriter));
    const streams = blobs.map((b, i) => [...chunksOf(b, 11 + i)]);
    for (let k = 0; streams.some((s) => k < s.length); k++) {
      for (const [i, s] of streams.entries()) if (k < s.length) await writers[i]!.write(s[k]!);
    }
    await Promise.all(writers.map((w, i) => w.commit(blobs[i]!.length, sha256(blobs[i]!))));
    for (const b of blobs) expect(Buffer.compare(await readFile(blobFile(store, sha256(b))), b)).toBe(0);
    return allocated;
  }

  it("two writers take two batches each by default, one each with a budget of two, and still write exact bytes", async () => {
    // Where O_DIRECT is refused no writer is direct and no batch is aligned.
    const n = direct ? 1 : 0;
    expect(await batchesFor(undefined)).toBe(4 * n);
    expect(await batchesFor(2 * 64 * KiB)).toBe(2 * n);
    // Three batches: the first writer to need a second one gets it, the other does without.
    expect(await batchesFor(3 * 64 * KiB)).toBe(3 * n);
    expect(await batchesFor(0)).toBe(2 * n);
  });

  it("refuses a negative or fractional budget", () => {
    expect(() => new FsStore(dir.path, { directWriteMemoryBytes: -1 })).toThrow(/directWriteMemoryBytes/);
    expect(() => new FsStore(dir.path, { directWriteMemoryBytes: 1.5 })).toThrow(/directWriteMemoryBytes/);
  });
});

// The whole store contract with every ingest written directly: 4 KiB batches (one block, so
// every batch is a direct write and every flush ends inside a block), and the checkpointing
// hasher so checkpoints meet direct batches in every case.
contentStoreSuite(
  "fs (direct writes for every ingest, 4 KiB batches, hash-wasm, 64 KiB checkpoints)",
  async () => {
    const d = await tempDir();
    const o = opts({ writeBatchBytes: 4096, digesters: hashWasmDigesters, checkpointBytes: 65536 });
    return { store: await openFsStore(d.path, o), cleanup: d.cleanup };
  },
  {
    largeBlobSize: 4 * MiB,
    reopen: async (store) => ({
      store: await openFsStore((store as FsStore).root, opts({ writeBatchBytes: 4096, digesters: hashWasmDigesters, checkpointBytes: 65536 })),
    }),
  },
);

// The hash worker's path with direct writes: aligned 4 KiB batches go with O_DIRECT, the tails
// of flushes and everything after an unaligned flush through the page cache.
contentStoreSuite(
  "fs (hash worker + direct writes for every ingest, 4 KiB batches)",
  async () => {
    const d = await tempDir();
    return { store: await openFsStore(d.path, opts({ writeBatchBytes: 4096, hashWorkerMinBytes: 1 })), cleanup: d.cleanup };
  },
  {
    largeBlobSize: 4 * MiB,
    reopen: async (store) => ({ store: await openFsStore((store as FsStore).root, opts({ writeBatchBytes: 4096, hashWorkerMinBytes: 1 })) }),
  },
);
