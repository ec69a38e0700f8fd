/** Writer.flush(): staged bytes reach the ingest file, where another store instance sees them. */
import { mkdtemp, rm, truncate } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes, createHash } from "node:crypto";
import { afterEach, beforeEach, expect, it } from "vitest";
import { parseDigest } from "@ferry/core";
import { hashWasmDigesters, ingestKey, openFsStore, type FsStore, type FsWriter } from "../src/index.ts";
import { readCheckpoint } from "../src/ingest-files.ts";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "ferry-fs-flush-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

it.each([
  ["node:crypto", {}],
  ["hash-wasm", { digesters: hashWasmDigesters, checkpointBytes: 1024 * 1024 }],
])("flush writes the staged batch so another store on the directory sees every byte (%s)", async (name, opts) => {
  const a = await openFsStore(dir, opts);
  const b = await openFsStore(dir, opts);
  const data = randomBytes(10_000);
  const w = await a.writer({ ref: "r" });
  await w.write(data.subarray(0, 6000));
  // Below the write batch: only in memory so far.
  expect((await b.status("r")).offset).toBe(0);
  await w.flush!();
  expect((await b.status("r")).offset).toBe(6000);
  // A saving digester checkpoints at the flushed offset (a chunk boundary), whatever checkpointBytes says.
  const cp = await readCheckpoint(join(dir, "ingest", ingestKey("r")));
  expect(cp?.offset).toBe(name === "hash-wasm" ? 6000 : undefined);
  // The writer goes on normally after a flush.
  await w.write(data.subarray(6000));
  await w.flush!();
  expect((await b.status("r")).offset).toBe(10_000);
  const want = parseDigest(`sha256:${createHash("sha256").update(data).digest("hex")}`);
  expect(w.digest()).toBe(want);
  await w.commit(data.length, want);
  expect((await b.info(want)).size).toBe(10_000);
});

it("a saved hash state beyond the ingest's data (bytes lost after a flush) is discarded, not trusted", async () => {
  const opts = { digesters: hashWasmDigesters, checkpointBytes: 1024 * 1024 };
  const store = await openFsStore(dir, opts);
  const data = randomBytes(8000);
  const w = await store.writer({ ref: "lost" });
  await w.write(data);
  await w.flush!();
  await w.close();
  const ingest = join(dir, "ingest", ingestKey("lost"));
  expect((await readCheckpoint(ingest))?.offset).toBe(8000);
  // What a power loss can leave: the state file survived, the data's tail did not.
  await truncate(join(ingest, "data"), 5000);
  const again = (await openFsStore(dir, opts)) as FsStore;
  const w2 = (await again.writer({ ref: "lost" })) as FsWriter;
  expect(w2.resumed).toEqual({ offset: 5000, restoredFromCheckpoint: 0 });
  expect(await readCheckpoint(ingest)).toBeUndefined();
  await w2.write(data.subarray(5000));
  const want = parseDigest(`sha256:${createHash("sha256").update(data).digest("hex")}`);
  await w2.commit(data.length, want);
  expect((await again.info(want)).size).toBe(8000);
});
