/**
 * Ingests of at least hashWorkerMinBytes (8 MiB here; node:crypto) hash on the worker thread while the
 * thread pool writes: digests (sync and at commit), resume after close and after a kill-like abandonment,
 * truncate, write errors, and a worker that dies mid-ingest.
 */
import { randomBytes } from "node:crypto";
import { closeSync, readdirSync, readlinkSync, realpathSync } from "node:fs";
import { readFile, truncate } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { digestOf } from "@ferry/core";
import { HashWorkerPool } from "../src/hash-worker-pool.ts";
import { ingestKey, openFsStore, type FsStore, type FsWriter } from "../src/index.ts";
import { codeOf, tempDir } from "./helpers.ts";

const MiB = 1024 * 1024;
let dir: { path: string; cleanup: () => Promise<void> };
let store: FsStore;

beforeEach(async () => {
  dir = await tempDir("ferry-hash-worker-");
  dir.path = realpathSync(dir.path);
  store = await openFsStore(dir.path, { fsync: false, hashWorkerMinBytes: 8 * MiB });
});
afterEach(async () => {
  await dir.cleanup();
});

async function writeAll(w: { write(c: Uint8Array): Promise<void> }, data: Uint8Array, chunk: number): Promise<void> {
  for (let i = 0; i < data.byteLength; i += chunk) await w.write(data.subarray(i, i + chunk));
}

it("hashes a large blob on the worker while the thread pool writes it: running digests, commit, bytes on disk", async () => {
  const data = randomBytes(9 * MiB + 12_345);
  const w = (await store.writer({ ref: "big-1", total: data.byteLength, expected: digestOf(data) })) as FsWriter;
  await writeAll(w, data.subarray(0, 3 * MiB + 7), 65_536);
  // Synchronous digest with bytes both in flight and still staged.
  expect(w.digest()).toBe(digestOf(data.subarray(0, 3 * MiB + 7)));
  await writeAll(w, data.subarray(3 * MiB + 7), 100_000);
  expect(w.digest()).toBe(digestOf(data));
  await w.commit(data.byteLength, digestOf(data));
  expect(w.digest()).toBe(digestOf(data));
  const back = await readFile(join(dir.path, "blobs", "sha256", digestOf(data).slice(7)));
  expect(back.equals(data)).toBe(true);
});

it("accepts one chunk larger than several batches", async () => {
  const data = randomBytes(10 * MiB);
  const w = await store.writer({ ref: "big-chunk", total: data.byteLength });
  await w.write(data);
  await w.commit(data.byteLength, digestOf(data));
  expect((await store.info(digestOf(data))).size).toBe(data.byteLength);
});

it("refuses a wrong digest at commit and keeps the ingest", async () => {
  const data = randomBytes(8 * MiB);
  const w = await store.writer({ ref: "big-bad", total: data.byteLength });
  await writeAll(w, data, 1 << 20);
  expect(await codeOf(w.commit(data.byteLength, digestOf("other")))).toBe("DigestMismatch");
  expect((await store.status("big-bad")).offset).toBe(data.byteLength);
});

it("resumes after close: the worker re-hashes what is on disk", async () => {
  const data = randomBytes(12 * MiB);
  const ref = "big-resume";
  const w1 = await store.writer({ ref, total: data.byteLength, expected: digestOf(data) });
  await writeAll(w1, data.subarray(0, 5 * MiB + 3), 65_536);
  await w1.close();
  const w2 = (await store.writer({ ref, total: data.byteLength, expected: digestOf(data) })) as FsWriter;
  expect(w2.resumed.offset).toBe(5 * MiB + 3);
  expect(w2.digest()).toBe(digestOf(data.subarray(0, 5 * MiB + 3)));
  await writeAll(w2, data.subarray(5 * MiB + 3), 65_536);
  await w2.commit(data.byteLength, digestOf(data));
  expect((await store.info(digestOf(data))).size).toBe(data.byteLength);
});

it("truncate(0) starts the hash and the file over", async () => {
  const data = randomBytes(8 * MiB + 1);
  const w = await store.writer({ ref: "big-trunc", total: data.byteLength });
  await writeAll(w, randomBytes(3 * MiB), 65_536);
  await w.truncate(0);
  await writeAll(w, data, 65_536);
  expect(w.digest()).toBe(digestOf(data));
  await w.commit(data.byteLength, digestOf(data));
});

it("flush() puts every accepted byte in the ingest file", async () => {
  const data = randomBytes(8 * MiB + 100);
  const w = (await store.writer({ ref: "big-flush", total: data.byteLength })) as FsWriter;
  await writeAll(w, data.subarray(0, 2 * MiB + 100), 65_536);
  await w.flush();
  const onDisk = await readFile(join(dir.path, "ingest", ingestKey("big-flush"), "data"));
  expect(onDisk.equals(data.subarray(0, 2 * MiB + 100))).toBe(true);
  await w.close();
});

it("a write that fails surfaces the fs error and breaks the writer until reopened", async () => {
  const data = randomBytes(8 * MiB);
  const w = (await store.writer({ ref: "big-ebadf", total: data.byteLength })) as FsWriter;
  // Close the descriptors under the writer (the data file is open twice when direct writes are
  // on: buffered and O_DIRECT): the write gets EBADF.
  for (const fd of fdsOf(join(dir.path, "ingest", ingestKey("big-ebadf"), "data"))) closeSync(fd);
  let err: unknown;
  try {
    await writeAll(w, data, 1 << 20);
    await w.flush();
  } catch (e) {
    err = e;
  }
  expect((err as NodeJS.ErrnoException).code).toBe("EBADF");
  expect(await codeOf(w.write(data.subarray(0, 10)))).toBe("FailedPrecondition");
  await w.close().catch(() => {});
});

it("a worker that dies mid-ingest fails the writer with Internal; a reopen resumes on a new worker", async () => {
  const data = randomBytes(16 * MiB);
  const ref = "big-crash";
  const w = await store.writer({ ref, total: data.byteLength, expected: digestOf(data) });
  await writeAll(w, data.subarray(0, 4 * MiB), 65_536);
  await w.flush!();
  HashWorkerPool.shared().crashForTest();
  let code: string | undefined;
  for (let i = 4 * MiB; i < data.byteLength && code === undefined; i += 65_536) {
    try {
      await w.write(data.subarray(i, i + 65_536));
    } catch (err) {
      code = (err as { code?: string }).code;
    }
    await new Promise((r) => setImmediate(r));
  }
  if (code === undefined) code = await codeOf(w.commit(data.byteLength, digestOf(data)));
  expect(code).toBe("Internal");
  await w.close();
  // The file holds at least what was flushed; the next writer re-hashes it on a fresh worker.
  const again = (await store.writer({ ref, total: data.byteLength, expected: digestOf(data) })) as FsWriter;
  const at = again.resumed.offset;
  expect(at).toBeGreaterThanOrEqual(4 * MiB);
  await writeAll(again, data.subarray(at), 65_536);
  await again.commit(data.byteLength, digestOf(data));
  expect((await store.info(digestOf(data))).size).toBe(data.byteLength);
});

it("a worker that died while this thread was busy fails a synchronous digest at once, not after its timeout", async () => {
  const data = randomBytes(2 * MiB);
  const w = (await store.writer({ ref: "big-dead-digest", total: 16 * MiB })) as FsWriter;
  await writeAll(w, data, 65_536);
  HashWorkerPool.shared().crashForTest({ blockUntilDead: true });
  const started = Date.now();
  let code: string | undefined;
  try {
    w.digest();
  } catch (err) {
    code = (err as { code?: string }).code;
  }
  expect(code).toBe("Internal");
  // It waited 60 s (the timeout for a live but silent worker) with the event loop blocked.
  expect(Date.now() - started).toBeLessThan(5_000);
  expect(await codeOf(w.write(data))).toBe("FailedPrecondition"); // broken until reopened
  await w.close();
  const all = Buffer.concat([data, randomBytes(14 * MiB)]);
  const again = (await store.writer({ ref: "big-dead-digest", total: all.byteLength })) as FsWriter;
  await writeAll(again, all.subarray(again.resumed.offset), 65_536);
  await again.commit(all.byteLength, digestOf(all));
});

it("a partial file left by a dead process is resumed from its length", async () => {
  const data = randomBytes(9 * MiB);
  const ref = "big-killed";
  const w = await store.writer({ ref, total: data.byteLength });
  await writeAll(w, data.subarray(0, 6 * MiB), 65_536);
  await w.close();
  // As if the process died after writing only part of its last batches.
  await truncate(join(dir.path, "ingest", ingestKey(ref), "data"), 4 * MiB + 17);
  const again = (await store.writer({ ref, total: data.byteLength })) as FsWriter;
  expect(again.resumed.offset).toBe(4 * MiB + 17);
  await writeAll(again, data.subarray(4 * MiB + 17), 65_536);
  await again.commit(data.byteLength, digestOf(data));
});

/** The descriptor this process holds open on `path` (from /proc/self/fd). */
function fdsOf(path: string): number[] {
  const fds: number[] = [];
  for (const name of readdirSync("/proc/self/fd")) {
    try {
      if (readlinkSync(`/proc/self/fd/${name}`) === path) fds.push(Number(name));
    } catch {
      // a descriptor closed while listing
    }
  }
  if (fds.length === 0) throw new Error(`no open descriptor on ${path}`);
  return fds;
}
