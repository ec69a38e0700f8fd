/**
 * The per-blob fast paths of small ingests: staging sized to the declared total (and its growth
 * when a writer sends more than it declared), unlabelled commits without a metadata file, and
 * directory fsyncs shared by concurrent commits.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { digestOf } from "@ferry/core";
import { openFsStore, type FsStore } from "./index.ts";

let root: string;
let store: FsStore;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "ferry-small-"));
  store = await openFsStore(root);
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function readBack(digest: ReturnType<typeof digestOf>): Promise<Buffer> {
  return readFile(join(root, "blobs", "sha256", digest.slice(7)));
}

it("commits a small blob written in many chunks into a staging buffer of its own size", async () => {
  const data = randomBytes(10_000);
  const w = await store.writer({ ref: "small-1", total: data.byteLength, expected: digestOf(data) });
  for (let i = 0; i < data.byteLength; i += 999) await w.write(data.subarray(i, i + 999));
  await w.commit(data.byteLength, digestOf(data));
  expect((await readBack(digestOf(data))).equals(data)).toBe(true);
});

it("keeps every byte when a writer sends more than the total it declared", async () => {
  const data = randomBytes(3000);
  const w = await store.writer({ ref: "over", total: 1000 });
  for (let i = 0; i < data.byteLength; i += 700) await w.write(data.subarray(i, i + 700));
  expect((await w.status()).offset).toBe(3000);
  await w.close();
  // Reopened: the ingest holds all 3000 bytes, in order.
  const again = await store.writer({ ref: "over", total: 1000 });
  expect((await again.status()).offset).toBe(3000);
  await again.close();
  expect((await readFile(join(root, "ingest", (await readdir(join(root, "ingest")))[0]!, "data"))).equals(data)).toBe(true);
});

it("an unlabelled commit writes no metadata file; its times are the commit's", async () => {
  const data = randomBytes(5000);
  const before = Date.now();
  const w = await store.writer({ ref: "bare", total: data.byteLength, expected: digestOf(data) });
  await w.write(data);
  await new Promise((r) => setTimeout(r, 20)); // the data's natural mtime is now older than the commit
  const commitStart = Date.now();
  await w.commit(data.byteLength, digestOf(data));
  const after = Date.now();
  await expect(stat(join(root, ".ferry", "meta", "sha256", `${digestOf(data).slice(7)}.json`))).rejects.toThrow();
  const info = await store.info(digestOf(data));
  expect(info.labels).toEqual({});
  expect(info.createdAt.getTime()).toBeGreaterThanOrEqual(Math.max(before, commitStart - 1));
  expect(info.createdAt.getTime()).toBeLessThanOrEqual(after);
});

it("a labelled commit after a delete replaces, and an unlabelled one removes, the old metadata", async () => {
  const data = randomBytes(100);
  const digest = digestOf(data);
  const put = async (labels?: Record<string, string>) => {
    const w = await store.writer({ ref: "re", total: data.byteLength, expected: digest });
    await w.write(data);
    await w.commit(data.byteLength, digest, labels ? { labels } : {});
  };
  await put({ a: "1" });
  expect((await store.info(digest)).labels).toEqual({ a: "1" });
  // A delete whose metadata removal was lost (crash) must not leak labels into the next commit.
  const meta = join(root, ".ferry", "meta", "sha256", `${digest.slice(7)}.json`);
  const saved = await readFile(meta);
  await store.delete(digest);
  await writeFile(meta, saved);
  await put();
  expect((await store.info(digest)).labels).toEqual({});
});

it("many concurrent commits (shared directory fsyncs) all publish their blob", async () => {
  const blobs = Array.from({ length: 40 }, () => randomBytes(2000));
  await Promise.all(
    blobs.map(async (data, i) => {
      const w = await store.writer({ ref: `c-${i}`, total: data.byteLength, expected: digestOf(data) });
      await w.write(data);
      await w.commit(data.byteLength, digestOf(data));
    }),
  );
  for (const data of blobs) expect((await readBack(digestOf(data))).equals(data)).toBe(true);
  expect(await readdir(join(root, "ingest"))).toEqual([]);
});
