/**
 * Labels and timestamps live in one small JSON file per blob beside the OCI layout
 * (`.ferry/meta/<alg>/<hex>.json`), never inside `blobs/` or `index.json`, and a new store handle
 * (another process) reads them back.
 */
import { chmod, readdir, readFile, unlink } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { digestOf, type Digest } from "@ferry/core";
import { openFsStore } from "../src/index.ts";
import { tempDir } from "./helpers.ts";

let dir: { path: string; cleanup: () => Promise<void> };
beforeEach(async () => {
  dir = await tempDir();
});
afterEach(async () => {
  await dir.cleanup();
});

it("keeps labels and times in .ferry/meta/<alg>/<hex>.json, outside the layout's own files", async () => {
  const store = await openFsStore(dir.path);
  const data = Buffer.from("labelled blob");
  const digest = digestOf(data);
  const w = await store.writer({ ref: "meta-1", total: data.byteLength, expected: digest });
  await w.write(data);
  await w.commit(data.byteLength, digest, { labels: { "ferry.example/origin": "test", keep: "yes" } });
  await store.update({ digest, labels: { note: "later" } }, ["labels.note"]);
  const info = await store.info(digest);

  const metaPath = join(dir.path, ".ferry", "meta", "sha256", `${digest.slice("sha256:".length)}.json`);
  const meta = JSON.parse(await readFile(metaPath, "utf8")) as { createdAt: string; updatedAt: string; labels: Record<string, string> };
  expect(meta.labels).toEqual({ "ferry.example/origin": "test", keep: "yes", note: "later" });
  expect(Date.parse(meta.createdAt)).toBe(info.createdAt.getTime());
  expect(Date.parse(meta.updatedAt)).toBe(info.updatedAt.getTime());
  expect(info.updatedAt.getTime()).toBeGreaterThanOrEqual(info.createdAt.getTime());

  // The layout itself holds only what the OCI spec names: the blob and no label anywhere.
  expect(await readdir(join(dir.path, "blobs", "sha256"))).toEqual([digest.slice("sha256:".length)]);
  expect(await readFile(join(dir.path, "index.json"), "utf8")).not.toContain("later");

  const other = await openFsStore(dir.path);
  const seen = await other.info(digest);
  expect(seen.labels).toEqual(meta.labels);
  expect(seen.createdAt.getTime()).toBe(info.createdAt.getTime());
  expect(seen.updatedAt.getTime()).toBe(info.updatedAt.getTime());
});

/** Commit `data` through `store`, with labels or bare. */
async function put(store: Awaited<ReturnType<typeof openFsStore>>, ref: string, data: Buffer, labels?: Record<string, string>): Promise<Digest> {
  const digest = digestOf(data);
  const w = await store.writer({ ref, total: data.byteLength, expected: digest });
  await w.write(data);
  await w.commit(data.byteLength, digest, labels ? { labels } : {});
  return digest;
}

/** Remove a blob's file the way an outside tool would, leaving its metadata behind. */
async function deleteBehindFerrysBack(digest: Digest): Promise<void> {
  const blobFile = join(dir.path, "blobs", "sha256", digest.slice("sha256:".length));
  await chmod(blobFile, 0o644);
  await unlink(blobFile);
}

it.each([
  ["another handle (another process)", true],
  ["the same handle", false],
])("a bare commit removes metadata left by an earlier life of its digest, written by %s", async (_, otherHandle) => {
  const store = await openFsStore(dir.path);
  // A bare commit in a store that never had labels: no meta/sha256/ yet.
  await put(store, "bare-first", Buffer.from("first bare blob"));
  await expect(readdir(join(dir.path, ".ferry", "meta"))).resolves.toEqual([]);

  // A labelled commit creates the directory, then the blob file disappears without its
  // metadata (an external rm, a crash mid-delete).
  const labeller = otherHandle ? await openFsStore(dir.path) : store;
  const data = Buffer.from("labelled, then deleted behind ferry's back");
  const digest = await put(labeller, "labelled", data, { stale: "yes" });
  await deleteBehindFerrysBack(digest);

  // Committed again, bare, through the first handle: the stale labels go (an unlink per bare
  // commit; skipping it while meta/sha256/ was recently missing would keep them).
  await put(store, "bare-again", data);
  expect((await store.info(digest)).labels).toEqual({});
  expect((await labeller.info(digest)).labels).toEqual({});
});
