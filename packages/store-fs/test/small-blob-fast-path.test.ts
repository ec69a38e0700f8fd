/**
 * The small-blob fast path (small-blob-writer.ts): a writer with a declared total of at most
 * `smallBlobBytes` and no ingest on disk holds its bytes in memory and writes only the blob at
 * commit; everything else turns it into a regular, resumable on-disk ingest.
 */
import { cp, readdir, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { digestOf } from "@ferry/core";
import { hashWasmDigesters, ingestKey, openFsStore, type FsStore, type FsWriter } from "../src/index.ts";
import { FileLock } from "../src/file-lock.ts";
import { SMALL_TEMP_MIN_AGE_MS } from "../src/small-blob-writer.ts";
import { bytes, codeOf, tempDir } from "./helpers.ts";

let dir: { path: string; cleanup: () => Promise<void> };
let store: FsStore;
beforeEach(async () => {
  dir = await tempDir();
  store = await openFsStore(dir.path);
});
afterEach(async () => {
  await dir.cleanup();
});

const ingestEntries = (): Promise<string[]> => readdir(join(dir.path, "ingest"));
const ingestDir = (ref: string): string => join(dir.path, "ingest", ingestKey(ref));
const blobPath = (d: string): string => join(dir.path, "blobs", "sha256", d.slice(7));

describe("small-blob fast path", () => {
  it("writes nothing to disk before commit, then publishes the blob read-only with one link", async () => {
    const data = bytes(40_000);
    const d = digestOf(data);
    const w = await store.writer({ ref: "s1", total: data.byteLength, expected: d });
    for (let i = 0; i < data.byteLength; i += 7000) await w.write(data.subarray(i, i + 7000));
    expect(await ingestEntries()).toEqual([]);
    expect(await codeOf(store.info(d))).toBe("NotFound");
    expect(w.digest()).toBe(d);
    await w.commit(data.byteLength, d);
    expect((await readFile(blobPath(d))).equals(data)).toBe(true);
    const st = await stat(blobPath(d));
    expect(st.mode & 0o777).toBe(0o444);
    expect(st.nlink).toBe(1);
    expect(await ingestEntries()).toEqual([]); // no temp file left behind
    expect(await codeOf(store.status("s1"))).toBe("NotFound");
    await w.close(); // harmless after commit
  });

  it("the threshold is the declared total: above it, or with no total, the ingest is on disk", async () => {
    const small = await openFsStore(dir.path, { smallBlobBytes: 1000 });
    const over = await small.writer({ ref: "over", total: 1001 });
    const unknown = await small.writer({ ref: "unknown" });
    const under = await small.writer({ ref: "under", total: 1000 });
    expect((await ingestEntries()).sort()).toEqual([ingestKey("over"), ingestKey("unknown")].sort());
    for (const w of [over, unknown, under]) await w.close();
  });

  it("fsync on or off, labels or none: the commit publishes the same blob and metadata", async () => {
    for (const fsync of [true, false]) {
      const s = await openFsStore(dir.path, { fsync });
      const a = bytes(1000 + (fsync ? 1 : 0));
      const b = bytes(2000 + (fsync ? 1 : 0));
      const before = Date.now();
      const wa = await s.writer({ ref: `a-${fsync}`, total: a.byteLength });
      await wa.write(a);
      await wa.commit(a.byteLength, digestOf(a), { labels: { k: "v" } });
      const wb = await s.writer({ ref: `b-${fsync}`, total: b.byteLength });
      await wb.write(b);
      await wb.commit(b.byteLength, digestOf(b));
      const after = Date.now();
      expect(await s.info(digestOf(a))).toMatchObject({ size: a.byteLength, labels: { k: "v" } });
      const ib = await s.info(digestOf(b));
      expect(ib).toMatchObject({ size: b.byteLength, labels: {} });
      expect(ib.createdAt.getTime()).toBeGreaterThanOrEqual(before - 1);
      expect(ib.createdAt.getTime()).toBeLessThanOrEqual(after);
    }
  });

  it("a sha512 expectation is verified from the buffer", async () => {
    const data = bytes(3000);
    const w = await store.writer({ ref: "x512", total: data.byteLength });
    await w.write(data);
    expect(await codeOf(w.commit(undefined, digestOf(bytes(3001), "sha512")))).toBe("DigestMismatch");
    const again = await store.writer({ ref: "x512", total: data.byteLength });
    await again.commit(undefined, digestOf(data, "sha512"));
    expect((await store.info(digestOf(data, "sha512"))).size).toBe(3000);
  });

  it("close spills into a regular ingest with the same status; the next writer resumes it", async () => {
    const data = bytes(20_000);
    const w = await store.writer({ ref: "spill", total: data.byteLength, expected: digestOf(data) });
    await w.write(data.subarray(0, 12_345));
    const before = await w.status();
    await new Promise((r) => setTimeout(r, 20)); // the spill happens later than the last write
    await w.close();
    expect((await readdir(ingestDir("spill"))).sort()).toEqual(["data", "expected", "ref", "startedat", "total", "updatedat"]);
    expect(await store.status("spill")).toEqual(before);
    const other = await openFsStore(dir.path, { digesters: hashWasmDigesters });
    expect(await other.status("spill")).toEqual(before);
    const w2 = (await other.writer({ ref: "spill", total: data.byteLength, expected: digestOf(data) })) as FsWriter;
    expect(w2.resumed.offset).toBe(12_345);
    expect(await w2.status()).toEqual(before);
    await w2.write(data.subarray(12_345));
    await w2.commit(data.byteLength, digestOf(data));
    expect((await readFile(blobPath(digestOf(data)))).equals(data)).toBe(true);
    expect(await ingestEntries()).toEqual([]);
  });

  it("an ingest already on disk for the ref is resumed, not shadowed", async () => {
    const data = bytes(5000);
    const w = await store.writer({ ref: "r", total: 5000 });
    await w.write(data.subarray(0, 100));
    await w.close();
    const w2 = (await store.writer({ ref: "r", total: 5000 })) as FsWriter;
    expect(w2.resumed.offset).toBe(100);
    await w2.write(data.subarray(100));
    await w2.commit(5000, digestOf(data));
  });

  it("more bytes than declared: spills and goes on as a regular ingest", async () => {
    const data = bytes(3000);
    const w = await store.writer({ ref: "big", total: 1000 });
    await w.write(data.subarray(0, 800));
    expect(await ingestEntries()).toEqual([]);
    await w.write(data.subarray(800, 1500));
    expect(await ingestEntries()).toEqual([ingestKey("big")]);
    await w.write(data.subarray(1500));
    expect(await w.status()).toMatchObject({ offset: 3000, total: 1000 });
    expect(w.digest()).toBe(digestOf(data));
    await w.commit(3000, digestOf(data));
    expect((await readFile(blobPath(digestOf(data)))).equals(data)).toBe(true);
    expect(await ingestEntries()).toEqual([]);
    // The ref is free again.
    await (await store.writer({ ref: "big", total: 10 })).close();
  });

  it("flush() puts every accepted byte on disk, where another handle sees it", async () => {
    const data = bytes(9000);
    const other = await openFsStore(dir.path);
    const w = await store.writer({ ref: "fl", total: data.byteLength });
    await w.write(data.subarray(0, 4000));
    expect(await codeOf(other.status("fl"))).toBe("NotFound"); // in this handle's memory only
    await w.flush!();
    expect((await other.status("fl")).offset).toBe(4000);
    await w.write(data.subarray(4000));
    await w.commit(data.byteLength, digestOf(data));
    expect(await ingestEntries()).toEqual([]);
  });

  it("flush() holds the ingest's lock from writing it to going on with it", async () => {
    const data = bytes(9000);
    const w = await store.writer({ ref: "held", total: data.byteLength });
    await w.write(data.subarray(0, 4000));
    // Whenever the lock is let go during the flush, act as another process would that expires
    // or aborts an unlocked ingest: remove it.
    let releases = 0;
    const release = vi.spyOn(FileLock.prototype, "release").mockImplementation(async () => {
      releases++;
      await rm(ingestDir("held"), { recursive: true, force: true });
    });
    try {
      await w.flush!();
    } finally {
      release.mockRestore();
    }
    expect(releases).toBe(0);
    expect((await w.status()).offset).toBe(4000);
    await w.write(data.subarray(4000));
    await w.commit(data.byteLength, digestOf(data));
    expect(await readFile(blobPath(digestOf(data)))).toEqual(data);
  });

  it("a failed commit keeps the bytes as a closed, resumable ingest", async () => {
    const data = bytes(2000);
    const w = await store.writer({ ref: "bad", total: 2000 });
    await w.write(data);
    expect(await codeOf(w.commit(1999))).toBe("SizeMismatch");
    expect(await codeOf(w.write(data))).toBe("FailedPrecondition");
    const w2 = await store.writer({ ref: "bad", total: 2000 });
    expect((await w2.status()).offset).toBe(2000);
    await w2.commit(2000, digestOf(data));
  });

  it("two refs of one digest, both in memory: one link wins, the loser keeps an abortable ingest", async () => {
    const data = bytes(100_000);
    const d = digestOf(data);
    const other = await openFsStore(dir.path);
    const ws = [await store.writer({ ref: "one", total: data.byteLength }), await other.writer({ ref: "two", total: data.byteLength })];
    for (const w of ws) await w.write(data);
    const results = await Promise.allSettled(ws.map((w) => w.commit(data.byteLength, d)));
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    const lost = results.findIndex((r) => r.status === "rejected");
    expect((results[lost] as PromiseRejectedResult).reason).toMatchObject({ code: "AlreadyExists" });
    const loser = lost === 0 ? "one" : "two";
    expect((await store.status(loser)).offset).toBe(data.byteLength);
    expect((await stat(join(ingestDir(loser), "data"))).nlink).toBe(1);
    await store.abort(loser);
    expect(await ingestEntries()).toEqual([]);
    expect((await readFile(blobPath(d))).equals(data)).toBe(true);
  });

  it("one writer per ref through every handle on the root: Locked, also for abort", async () => {
    const other = await openFsStore(dir.path);
    const w = await store.writer({ ref: "held", total: 100 });
    await w.write(bytes(10));
    expect(await codeOf(store.writer({ ref: "held", total: 100 }))).toBe("Locked");
    expect(await codeOf(other.writer({ ref: "held", total: 100 }))).toBe("Locked");
    expect(await codeOf(other.writer({ ref: "held" }))).toBe("Locked");
    expect(await codeOf(store.abort("held"))).toBe("Locked");
    expect(await codeOf(other.abort("held"))).toBe("Locked");
    expect((await store.status("held")).offset).toBe(10);
    await w.close();
    const w2 = await other.writer({ ref: "held", total: 100 });
    expect((await w2.status()).offset).toBe(10);
    await w2.close();
    await store.abort("held");
    expect(await codeOf(store.status("held"))).toBe("NotFound");
    expect(await ingestEntries()).toEqual([]);
  });

  it("listStatuses of the handle shows its in-memory ingests, with the prefix filter", async () => {
    const a = await store.writer({ ref: "ls-a", total: 50 });
    await a.write(bytes(5));
    const b = await store.writer({ ref: "other-b", total: 50 });
    const onDisk = await store.writer({ ref: "ls-c" });
    expect((await store.listStatuses()).map((s) => [s.ref, s.offset]).sort()).toEqual([["ls-a", 5], ["ls-c", 0], ["other-b", 0]]);
    expect((await store.listStatuses({ refPrefix: "ls-" })).map((s) => s.ref).sort()).toEqual(["ls-a", "ls-c"]);
    // Another handle sees the disk, as another process would.
    expect((await (await openFsStore(dir.path)).listStatuses()).map((s) => s.ref)).toEqual(["ls-c"]);
    for (const w of [a, b, onDisk]) await w.close();
    expect((await store.listStatuses()).map((s) => s.ref).sort()).toEqual(["ls-a", "ls-c", "other-b"]);
  });

  it("truncate(0) in memory restarts the ingest", async () => {
    const data = bytes(500);
    const w = await store.writer({ ref: "tr", total: 500 });
    await w.write(bytes(300));
    await w.truncate(0);
    expect((await w.status()).offset).toBe(0);
    await w.write(data);
    await w.commit(500, digestOf(data));
    expect((await readFile(blobPath(digestOf(data)))).equals(data)).toBe(true);
  });

  it("a spill leaves alone an ingest of the ref that another process created meanwhile", async () => {
    // What another process leaves: an ingest written by a store on another root, copied in.
    const elsewhere = await tempDir();
    try {
      const foreign = await openFsStore(elsewhere.path, { smallBlobBytes: 0 });
      const fw = await foreign.writer({ ref: "race", total: 100 });
      await fw.write(bytes(3));
      await fw.close();
      const w = await store.writer({ ref: "race", total: 100 });
      await w.write(bytes(50));
      await cp(join(elsewhere.path, "ingest", ingestKey("race")), ingestDir("race"), { recursive: true });
      await w.close();
      expect((await store.status("race")).offset).toBe(3);
    } finally {
      await elsewhere.cleanup();
    }
  });

  it("expireIngests removes a small commit's stale temp file, not a fresh one", async () => {
    const stale = join(dir.path, "ingest", ".blob-0123456789abcdef.tmp");
    const fresh = join(dir.path, "ingest", ".blob-fedcba9876543210.tmp");
    await writeFile(stale, "x");
    await writeFile(fresh, "y");
    const old = new Date(Date.now() - 3_600_000);
    await utimes(stale, old, old);
    await store.expireIngests(60_000);
    expect(await ingestEntries()).toEqual([".blob-fedcba9876543210.tmp"]);
  });

  it("expireIngests leaves a temp file younger than the minimum age, even with no idle time at all", async () => {
    // The temp of a commit in progress (its mtime is the commit's start): removing it failed
    // commits, and some only after their blob was published.
    const recent = join(dir.path, "ingest", ".blob-00000000000000001.tmp");
    const old = join(dir.path, "ingest", ".blob-00000000000000002.tmp");
    await writeFile(recent, "x");
    await writeFile(old, "y");
    const t = (ago: number): Date => new Date(Date.now() - ago);
    await utimes(recent, t(SMALL_TEMP_MIN_AGE_MS - 60_000), t(SMALL_TEMP_MIN_AGE_MS - 60_000));
    await utimes(old, t(SMALL_TEMP_MIN_AGE_MS + 60_000), t(SMALL_TEMP_MIN_AGE_MS + 60_000));
    await store.expireIngests(0);
    expect(await ingestEntries()).toEqual([".blob-00000000000000001.tmp"]);
  });

  it("smallBlobBytes: 0 turns the fast path off; a bad value is refused", async () => {
    const off = await openFsStore(dir.path, { smallBlobBytes: 0 });
    const w = await off.writer({ ref: "off", total: 10 });
    expect(await ingestEntries()).toEqual([ingestKey("off")]);
    await w.close();
    await expect(openFsStore(dir.path, { smallBlobBytes: -1 })).rejects.toThrow(/smallBlobBytes/);
  });
});
