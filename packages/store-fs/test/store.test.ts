import { describe, expect, it, beforeEach, afterEach } from "vitest";
import { execFileSync } from "node:child_process";
import { chmod, chown, link, mkdir, readFile, readdir, stat, writeFile, utimes } from "node:fs/promises";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { digestOf, type Digest, type Info } from "@ferry/core";
import { FsStore, hashWasmDigesters, openFsStore, ingestKey, type FsWriter } from "../src/index.ts";
import { bytes, codeOf, tempDir } from "./helpers.ts";

let dir: { path: string; cleanup: () => Promise<void> };
let store: FsStore;

beforeEach(async () => {
  dir = await tempDir();
  store = await openFsStore(dir.path, { fsync: false });
});
afterEach(async () => {
  await dir.cleanup();
});

/** An ingest of `ref` holding `data`, left as a commit leaves it just before linking: read-only. Its data path. */
async function crashedCommit(s: FsStore, root: string, ref: string, data: Uint8Array): Promise<string> {
  const w = await s.writer({ ref });
  await w.write(data);
  await w.close();
  const idata = join(root, "ingest", ingestKey(ref), "data");
  await chmod(idata, 0o444);
  return idata;
}

/** Run an ES module `script` as user nobody (root only); its stdout's JSON. */
function runAsNobody(script: string, home: string): unknown {
  const out = execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
    uid: 65534,
    gid: 65534,
    cwd: new URL("..", import.meta.url).pathname,
    encoding: "utf8",
    env: { ...process.env, HOME: home, TSX_DISABLE_CACHE: "1" },
  });
  return JSON.parse(out.trim()) as unknown;
}

async function chownTree(path: string, uid: number, gid: number): Promise<void> {
  await chown(path, uid, gid);
  if (!(await stat(path)).isDirectory()) return;
  for (const name of await readdir(path)) await chownTree(join(path, name), uid, gid);
}

async function put(data: Uint8Array, ref = `r-${digestOf(data).slice(7, 19)}`, labels?: Record<string, string>): Promise<Digest> {
  const w = await store.writer({ ref, total: data.byteLength });
  await w.write(data);
  const d = digestOf(data);
  await w.commit(data.byteLength, d, labels ? { labels } : {});
  return d;
}

describe("FsStore layout on disk", () => {
  it("creates a valid OCI image layout skeleton", async () => {
    expect(JSON.parse(await readFile(join(dir.path, "oci-layout"), "utf8"))).toEqual({ imageLayoutVersion: "1.0.0" });
    const index = JSON.parse(await readFile(join(dir.path, "index.json"), "utf8"));
    expect(index.schemaVersion).toBe(2);
    expect(index.manifests).toEqual([]);
    expect((await stat(join(dir.path, "blobs", "sha256"))).isDirectory()).toBe(true);
    expect((await stat(join(dir.path, "ingest"))).isDirectory()).toBe(true);
  });

  it("keeps an ingest in ingest/<sha256(ref)>/ with its files, then publishes blobs/<alg>/<hex> read-only", async () => {
    // The regular path (a blob this small takes the in-memory one by default: small-blob-fast-path.test.ts).
    const store = await openFsStore(dir.path, { fsync: false, smallBlobBytes: 0 });
    const data = bytes(3000);
    const ref = "layer-test";
    const w = await store.writer({ ref, total: 3000, expected: digestOf(data) });
    await w.write(data.subarray(0, 1000));
    const idir = join(dir.path, "ingest", createHash("sha256").update(ref).digest("hex"));
    expect(ingestKey(ref)).toBe(createHash("sha256").update(ref).digest("hex"));
    expect((await readdir(idir)).sort()).toEqual(["data", "expected", "lock", "ref", "startedat", "total", "updatedat"]);
    expect(await readFile(join(idir, "ref"), "utf8")).toBe(ref);
    expect(await readFile(join(idir, "total"), "utf8")).toBe("3000");
    expect(await readFile(join(idir, "expected"), "utf8")).toBe(digestOf(data));
    expect(Number.isNaN(Date.parse(await readFile(join(idir, "startedat"), "utf8")))).toBe(false);
    const lock = JSON.parse(await readFile(join(idir, "lock"), "utf8"));
    expect(lock.pid).toBe(process.pid);
    // Readers never see it before commit.
    expect(await codeOf(store.readerAt({ digest: digestOf(data) }))).toBe("NotFound");
    await w.write(data.subarray(1000));
    await w.commit(3000, digestOf(data));
    const blob = join(dir.path, "blobs", "sha256", digestOf(data).slice(7));
    expect(await readFile(blob)).toEqual(data);
    expect((await stat(blob)).mode & 0o777).toBe(0o444);
    expect((await stat(blob)).nlink).toBe(1);
    await expect(stat(idir)).rejects.toThrow();
    expect(await store.listStatuses()).toEqual([]);
  });

  it("batches small writes: nothing reaches the data file until a batch fills, all of it after close", async () => {
    const s = await openFsStore(dir.path, { fsync: false, writeBatchBytes: 4096 });
    const w = await s.writer({ ref: "small-writes" });
    const data = bytes(10_000);
    for (let i = 0; i < 3000; i += 100) await w.write(data.subarray(i, i + 100));
    const dataFile = join(dir.path, "ingest", ingestKey("small-writes"), "data");
    expect((await stat(dataFile)).size).toBe(0);
    for (let i = 3000; i < 5000; i += 100) await w.write(data.subarray(i, i + 100));
    expect((await stat(dataFile)).size).toBe(4100); // the write that crossed 4096 went out with the batch
    expect((await w.status()).offset).toBe(5000);
    await w.close();
    expect((await stat(dataFile)).size).toBe(5000);
    expect((await s.status("small-writes")).offset).toBe(5000);
  });
});

describe("FsStore provider", () => {
  it("reads at arbitrary offsets, short at the end, empty past it, and streams ranges", async () => {
    const data = bytes(5 * 1024 * 1024 + 17);
    const d = await put(data);
    const r = await store.readerAt({ digest: d });
    expect(r.size).toBe(data.byteLength);
    expect(Buffer.from(await r.read(0, 10))).toEqual(data.subarray(0, 10));
    expect(Buffer.from(await r.read(1_234_567, 100))).toEqual(data.subarray(1_234_567, 1_234_667));
    expect(Buffer.from(await r.read(data.byteLength - 5, 100))).toEqual(data.subarray(data.byteLength - 5));
    expect((await r.read(data.byteLength, 10)).byteLength).toBe(0);
    expect((await r.read(data.byteLength + 100, 10)).byteLength).toBe(0);
    const chunks: Buffer[] = [];
    for await (const c of r.createReadStream({ offset: 100, end: 3 * 1024 * 1024 })) chunks.push(c as Buffer);
    // Buffer.equals, not toEqual: vitest's deep equality walks 3 MiB byte by byte (tens of seconds under load).
    const streamed = Buffer.concat(chunks);
    expect(streamed.byteLength).toBe(3 * 1024 * 1024 - 100);
    expect(streamed.equals(data.subarray(100, 3 * 1024 * 1024))).toBe(true);
    const all: Buffer[] = [];
    for await (const c of r.createReadStream()) all.push(c as Buffer);
    expect(digestOf(Buffer.concat(all))).toBe(d);
    await r.close();
    await r.close();
    expect(await codeOf(r.read(0, 1))).toBe("FailedPrecondition");
    expect(await codeOf(r.read(-1, 1))).toBe("FailedPrecondition");
    const r2 = await store.readerAt({ digest: d });
    expect(await codeOf(r2.read(-1, 1))).toBe("InvalidArgument");
    await r2.close();
  });

  it("a 6-byte blob read through a window one byte too long", async () => {
    const d = await put(Buffer.from("hello!"));
    const r = await store.readerAt({ digest: d, size: 6 });
    expect(Buffer.from(await r.read(0, 7)).toString()).toBe("hello!");
    await r.close();
  });

  it("an aborted signal stops a read stream", async () => {
    const d = await put(bytes(3 * 1024 * 1024));
    const r = await store.readerAt({ digest: d });
    const ac = new AbortController();
    const s = r.createReadStream({ signal: ac.signal });
    let n = 0;
    await expect(
      (async () => {
        for await (const c of s) {
          n += (c as Buffer).byteLength;
          ac.abort();
        }
      })(),
    ).rejects.toThrow();
    expect(n).toBeLessThan(3 * 1024 * 1024);
    await r.close();
  });
});

describe("FsStore commit semantics", () => {
  it("wrong size or digest keeps the data for a retry; truncate resets; then success", async () => {
    const data = bytes(2000);
    const w = await store.writer({ ref: "x" });
    await w.write(data);
    expect(await codeOf(w.commit(1999))).toBe("SizeMismatch");
    const w2 = await store.writer({ ref: "x" });
    expect((await w2.status()).offset).toBe(2000);
    expect(await codeOf(w2.commit(2000, digestOf("other")))).toBe("DigestMismatch");
    const w3 = await store.writer({ ref: "x" });
    expect(w3.digest()).toBe(digestOf(data));
    await w3.truncate(0);
    expect((await w3.status()).offset).toBe(0);
    expect(w3.digest()).toBe(digestOf(new Uint8Array()));
    await w3.write(data.subarray(0, 10));
    await w3.commit(10, digestOf(data.subarray(0, 10)));
    expect((await store.info(digestOf(data.subarray(0, 10)))).size).toBe(10);
    expect(await codeOf(w3.write(data))).toBe("FailedPrecondition");
  });

  it("the digest the writer was opened with is always checked", async () => {
    const w = await store.writer({ ref: "e", expected: digestOf("abc") });
    await w.write(Buffer.from("abd"));
    expect(await codeOf(w.commit())).toBe("DigestMismatch");
  });

  it("verifies a sha512 expectation by re-hashing the file", async () => {
    const data = bytes(100_000);
    const w = await store.writer({ ref: "sha512" });
    await w.write(data);
    await w.commit(undefined, digestOf(data, "sha512"));
    const info = await store.info(digestOf(data, "sha512"));
    expect(info.size).toBe(100_000);
    expect((await stat(join(dir.path, "blobs", "sha512", digestOf(data, "sha512").slice(7)))).isFile()).toBe(true);
  });

  it("existing content: AlreadyExists; the ingest stays, unlocked, writable and abortable", async () => {
    const data = bytes(100);
    await put(data, "first");
    const w = await store.writer({ ref: "second" });
    await w.write(data);
    expect(await codeOf(w.commit(100, digestOf(data)))).toBe("AlreadyExists");
    expect((await store.status("second")).offset).toBe(100);
    const idata = join(dir.path, "ingest", ingestKey("second"), "data");
    expect((await stat(idata)).mode & 0o777).toBe(0o644);
    expect((await stat(idata)).nlink).toBe(1);
    await store.abort("second");
    expect(await codeOf(store.status("second"))).toBe("NotFound");
  });

  it("two refs committing one digest at once: exactly one wins", async () => {
    const data = bytes(300_000);
    for (let round = 0; round < 5; round++) {
      const ws = await Promise.all(["a", "b", "c"].map((r) => store.writer({ ref: `${r}${round}` })));
      const d = digestOf(Buffer.concat([data, Buffer.from([round])]));
      for (const w of ws) {
        await w.write(data);
        await w.write(Buffer.from([round]));
      }
      const results = await Promise.allSettled(ws.map((w) => w.commit(300_001, d)));
      expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
      for (const r of results) if (r.status === "rejected") expect(r.reason.code).toBe("AlreadyExists");
      expect((await store.info(d)).size).toBe(300_001);
      for (const [i, r] of results.entries()) if (r.status === "rejected") await store.abort(ws[i]!.ref);
    }
    expect(await store.listStatuses()).toEqual([]);
  });

  it("a second writer on one ref gets Locked, and can open after the first closes", async () => {
    const w = await store.writer({ ref: "busy" });
    expect(await codeOf(store.writer({ ref: "busy" }))).toBe("Locked");
    const other = await openFsStore(dir.path);
    expect(await codeOf(other.writer({ ref: "busy" }))).toBe("Locked");
    expect(await codeOf(store.abort("busy"))).toBe("Locked");
    await w.close();
    await w.close(); // idempotent
    const w2 = await other.writer({ ref: "busy" });
    await w2.close();
  });
});

describe("FsStore resume", () => {
  it("close/reopen keeps offset, digest and timestamps", async () => {
    const data = bytes(50_000);
    const w = await store.writer({ ref: "resume", total: 50_000 });
    await w.write(data.subarray(0, 20_000));
    const before = await w.status();
    const digest = w.digest();
    await w.close();
    const w2 = (await store.writer({ ref: "resume", total: 50_000 })) as FsWriter;
    expect(await w2.status()).toEqual(before);
    expect(await store.status("resume")).toEqual(before);
    expect(w2.digest()).toBe(digest);
    expect(w2.resumed).toEqual({ offset: 20_000, restoredFromCheckpoint: 0 });
    await w2.write(data.subarray(20_000));
    await w2.commit(50_000, digestOf(data));
  });

  it("hash-wasm: close checkpoints the hash state; a reopen loads it; a corrupt state falls back to re-hashing", async () => {
    const opts = { fsync: false, digesters: hashWasmDigesters, checkpointBytes: 64 * 1024, writeBatchBytes: 16 * 1024 };
    const s = await openFsStore(dir.path, opts);
    const data = bytes(300_000);
    const w = await s.writer({ ref: "wasm" });
    await w.write(data.subarray(0, 100_000));
    await w.write(data.subarray(100_000, 200_001));
    await w.close();
    const statePath = join(dir.path, "ingest", ingestKey("wasm"), "hashstate");
    expect(JSON.parse(await readFile(statePath, "utf8")).offset).toBe(200_001);
    const w2 = (await s.writer({ ref: "wasm" })) as FsWriter;
    expect(w2.resumed).toEqual({ offset: 200_001, restoredFromCheckpoint: 200_001 });
    expect(w2.digest()).toBe(digestOf(data.subarray(0, 200_001)));
    await w2.close();
    await writeFile(statePath, JSON.stringify({ algorithm: "sha256", offset: 1000, state: Buffer.from("garbage").toString("base64") }));
    const w3 = (await s.writer({ ref: "wasm" })) as FsWriter;
    expect(w3.resumed.restoredFromCheckpoint).toBe(0);
    expect(w3.digest()).toBe(digestOf(data.subarray(0, 200_001)));
    await w3.write(data.subarray(200_001));
    await w3.commit(300_000, digestOf(data));
  });

  it("refuses a reopen with a different total or expected digest", async () => {
    const w = await store.writer({ ref: "t", total: 10, expected: digestOf("0123456789") });
    await w.write(Buffer.from("01234"));
    await w.close();
    expect(await codeOf(store.writer({ ref: "t", total: 11 }))).toBe("FailedPrecondition");
    expect(await codeOf(store.writer({ ref: "t", expected: digestOf("x") }))).toBe("FailedPrecondition");
    const w2 = await store.writer({ ref: "t" }); // unset values inherit the stored ones
    expect(await w2.status()).toMatchObject({ total: 10, expected: digestOf("0123456789"), offset: 5 });
    await w2.write(Buffer.from("56789"));
    await w2.commit();
  });

  it("compares the stored ref on reopen (hash collision or corruption)", async () => {
    const w = await store.writer({ ref: "mine" });
    await w.close();
    await writeFile(join(dir.path, "ingest", ingestKey("mine"), "ref"), "someone-else");
    expect(await codeOf(store.writer({ ref: "mine" }))).toBe("FailedPrecondition");
  });

  it("counts live leases only: one left by a dead process is ignored and removed", async () => {
    const lease = await store.lease();
    expect(await store.activeLeases()).toBe(1);
    const { hostname } = await import("node:os");
    const dead = join(dir.path, ".ferry", "leases", "dead.lease");
    await writeFile(dead, JSON.stringify({ pid: 2 ** 22 + 12345, host: hostname(), token: "t", acquiredAt: "" }));
    expect(await store.activeLeases()).toBe(1);
    await expect(stat(dead)).rejects.toMatchObject({ code: "ENOENT" });
    await lease.release();
    expect(await store.activeLeases()).toBe(0);
  });

  it("a crash between publishing and cleanup leaves a linked data file that a reopen discards", async () => {
    const data = bytes(1000);
    // Simulate what a commit does before removing the ingest (read-only, then linked into
    // blobs/) and a crash right after.
    const idata = await crashedCommit(store, dir.path, "crash", data.subarray(0, 400));
    const published = join(dir.path, "blobs", "sha256", digestOf(data.subarray(0, 400)).slice(7));
    await link(idata, published);
    const w2 = await store.writer({ ref: "crash" });
    expect((await w2.status()).offset).toBe(0);
    expect((await stat(idata)).mode & 0o777).toBe(0o644);
    await w2.write(data);
    await w2.commit(1000, digestOf(data));
    // The blob published before the "crash" is untouched, and still read-only.
    expect((await stat(published)).mode & 0o777).toBe(0o444);
    const r = await store.readerAt({ digest: digestOf(data.subarray(0, 400)) });
    expect(Buffer.from(await r.read(0, 1000))).toEqual(data.subarray(0, 400));
    await r.close();
  });

  it("a crash between making the data read-only and linking it leaves an ingest a reopen resumes", async () => {
    const data = bytes(1000);
    const idata = await crashedCommit(store, dir.path, "crash", data.subarray(0, 400));
    const w2 = await store.writer({ ref: "crash" });
    expect((await w2.status()).offset).toBe(400);
    expect((await stat(idata)).mode & 0o777).toBe(0o644);
    await w2.write(data.subarray(400));
    await w2.commit(1000, digestOf(data));
    expect(await store.info(digestOf(data))).toMatchObject({ size: 1000 });
  });

  it.runIf(process.getuid?.() === 0)("a user who may only read a layout (no ingest/ or .ferry/ in it) opens it and reads it", async () => {
    const root = join(dir.path, "theirs");
    const s = await openFsStore(root, { fsync: false });
    const data = bytes(3000);
    const w = await s.writer({ ref: "blob", total: data.byteLength });
    await w.write(data);
    await w.commit(data.byteLength, digestOf(data));
    await s.setName("app:1", { mediaType: "application/octet-stream", digest: digestOf(data), size: data.byteLength });
    // As skopeo writes a layout: nothing of ferry's own.
    const { rm } = await import("node:fs/promises");
    await rm(join(root, "ingest"), { recursive: true });
    await rm(join(root, ".ferry"), { recursive: true });
    await chmod(dir.path, 0o755);
    const script = `
      import { openFsStore } from ${JSON.stringify(new URL("../src/index.ts", import.meta.url).pathname)};
      const store = await openFsStore(${JSON.stringify(root)});
      const d = ${JSON.stringify(digestOf(data))};
      const r = await store.readerAt({ digest: d });
      const n = (await r.read(0, 10_000)).byteLength;
      await r.close();
      const names = (await store.listNames()).map((x) => x.name);
      const statuses = await store.listStatuses();
      const write = await store.writer({ ref: "x" }).then(() => "opened", (e) => e.code);
      console.log(JSON.stringify({ n, names, statuses: statuses.length, write }));`;
    expect(runAsNobody(script, root)).toEqual({ n: 3000, names: ["app:1"], statuses: 0, write: "EACCES" });
  });

  // Root opens read-only files for writing anyway: the user who hit this was not root.
  it.runIf(process.getuid?.() === 0)("a user other than root reopens either crashed commit", async () => {
    const data = bytes(1000);
    const root = join(dir.path, "nobody");
    await mkdir(root);
    const asNobody = await openFsStore(root, { fsync: false });
    for (const [ref, linked] of [["linked", true], ["unlinked", false]] as const) {
      const idata = await crashedCommit(asNobody, root, ref, data.subarray(0, 400));
      if (linked) await link(idata, join(root, "blobs", "sha256", digestOf(data.subarray(0, 400)).slice(7))).catch(() => {});
    }
    await chownTree(root, 65534, 65534);
    await chmod(dir.path, 0o755); // mkdtemp made it 0700: nobody could not reach the store
    const script = `
      import { openFsStore } from ${JSON.stringify(new URL("../src/index.ts", import.meta.url).pathname)};
      const store = await openFsStore(${JSON.stringify(root)}, { fsync: false });
      const out = {};
      for (const ref of ["linked", "unlinked"]) {
        const w = await store.writer({ ref });
        out[ref] = (await w.status()).offset;
        await w.close();
      }
      console.log(JSON.stringify(out));`;
    expect(runAsNobody(script, root)).toEqual({ linked: 0, unlinked: 400 });
  });
});

describe("FsStore manager", () => {
  it("info, labels replace-all and by field path, walk filters, delete", async () => {
    const a = await put(Buffer.from("aaa"), "a", { "ferry.gc.root": "1", team: "x" });
    const b = await put(Buffer.from("bbb"), "b", { team: "y" });
    const c = await put(Buffer.from("ccc"), "c");
    const ia = await store.info(a);
    expect(ia).toMatchObject({ digest: a, size: 3, labels: { "ferry.gc.root": "1", team: "x" } });
    expect(ia.createdAt).toBeInstanceOf(Date);

    let u = await store.update({ digest: b, labels: { k: "v" } });
    expect(u.labels).toEqual({ k: "v" });
    u = await store.update({ digest: b, labels: { k2: "v2" } }, ["labels.k2"]);
    expect(u.labels).toEqual({ k: "v", k2: "v2" });
    u = await store.update({ digest: b, labels: {} }, ["labels.k"]);
    expect(u.labels).toEqual({ k2: "v2" });
    expect(u.updatedAt.getTime()).toBeGreaterThanOrEqual(u.createdAt.getTime());
    expect((await store.info(b)).labels).toEqual({ k2: "v2" });
    expect(await codeOf(store.update({ digest: b }, ["size"]))).toBe("InvalidArgument");

    const seen = async (filter?: Parameters<FsStore["walk"]>[1]): Promise<string[]> => {
      const out: string[] = [];
      await store.walk((i: Info) => void out.push(i.digest), filter);
      return out.sort();
    };
    expect(await seen()).toEqual([a, b, c].sort());
    expect(await seen({ labels: { team: true } })).toEqual([a]);
    expect(await seen({ labels: { team: "x", "ferry.gc.root": "1" } })).toEqual([a]);
    expect(await seen({ labels: { team: "z" } })).toEqual([]);
    expect(await seen({ algorithm: "sha512" })).toEqual([]);

    await store.delete(a);
    expect(await codeOf(store.info(a))).toBe("NotFound");
    expect(await codeOf(store.delete(a))).toBe("NotFound");
    await expect(stat(join(dir.path, ".ferry", "meta", "sha256", `${a.slice(7)}.json`))).rejects.toThrow();
    // Re-committing after delete starts with fresh labels.
    await put(Buffer.from("aaa"), "a-again");
    expect((await store.info(a)).labels).toEqual({});
  });

  it("blobs written by other tools get timestamps from the file and no labels", async () => {
    const data = Buffer.from("foreign");
    const d = digestOf(data);
    await writeFile(join(dir.path, "blobs", "sha256", d.slice(7)), data);
    await writeFile(join(dir.path, "blobs", "sha256", "not-a-digest"), "x");
    const info = await store.info(d);
    expect(info).toMatchObject({ size: 7, labels: {} });
    const all: string[] = [];
    await store.walk((i) => void all.push(i.digest));
    expect(all).toEqual([d]);
  });
});

describe("FsStore ingest manager", () => {
  it("listStatuses with a prefix filter, status, abort then NotFound", async () => {
    const w1 = await store.writer({ ref: "layer-1" });
    await w1.write(Buffer.from("abc"));
    const w2 = await store.writer({ ref: "config-1" });
    await w2.close();
    const all = await store.listStatuses();
    expect(all.map((s) => s.ref).sort()).toEqual(["config-1", "layer-1"]);
    expect((await store.listStatuses({ refPrefix: "layer-" })).map((s) => ({ ref: s.ref, offset: s.offset }))).toEqual([{ ref: "layer-1", offset: 3 }]);
    expect((await store.status("layer-1")).offset).toBe(3);
    await store.abort("config-1");
    expect(await codeOf(store.status("config-1"))).toBe("NotFound");
    expect(await codeOf(store.abort("config-1"))).toBe("NotFound");
    expect(await codeOf(store.abort("never-was"))).toBe("NotFound");
    await w1.close();
  });

  it("expireIngests removes idle ingests but not fresh or locked ones", async () => {
    const idle = await store.writer({ ref: "idle" });
    await idle.write(Buffer.from("zz"));
    await idle.close();
    const held = await store.writer({ ref: "held" });
    await held.close();
    const fresh = await store.writer({ ref: "fresh" });
    await fresh.close();
    // Age two of them by an hour, then lock one of those with a live writer.
    const old = new Date(Date.now() - 3_600_000);
    for (const ref of ["idle", "held"]) {
      const d = join(dir.path, "ingest", ingestKey(ref));
      await writeFile(join(d, "updatedat"), old.toISOString());
      await writeFile(join(d, "startedat"), old.toISOString());
      await utimes(join(d, "data"), old, old);
    }
    const other = await openFsStore(dir.path); // the holder is another store instance
    const holder = await other.writer({ ref: "held" });
    expect(await store.expireIngests(60_000)).toEqual(["idle"]);
    expect((await store.listStatuses()).map((s) => s.ref).sort()).toEqual(["fresh", "held"]);
    await holder.close();
  });
});

describe("FsStore leftovers and signals", () => {
  it("expireIngests also clears interrupted removals and creations", async () => {
    const ingest = join(dir.path, "ingest");
    const { mkdir } = await import("node:fs/promises");
    await mkdir(join(ingest, ".trash-0123"), { recursive: true });
    await writeFile(join(ingest, ".trash-0123", "data"), "x");
    const half = join(ingest, ingestKey("half-created"));
    await mkdir(half);
    await writeFile(join(half, "data"), "no ref file yet");
    const old = new Date(Date.now() - 3_600_000);
    await utimes(half, old, old);
    expect(await store.listStatuses()).toEqual([]); // no ref file: not an ingest
    expect(await store.expireIngests(60_000)).toEqual([]);
    expect((await readdir(ingest)).sort()).toEqual([]);
  });

  it("an aborted signal refuses to open a writer and stops writes of an open one", async () => {
    const ac = new AbortController();
    ac.abort();
    expect(await codeOf(store.writer({ ref: "sig", signal: ac.signal }))).toBe("Aborted");
    const ac2 = new AbortController();
    const w = await store.writer({ ref: "sig", signal: ac2.signal });
    await w.write(Buffer.from("abc"));
    ac2.abort();
    expect(await codeOf(w.write(Buffer.from("def")))).toBe("Aborted");
    await w.close();
    expect((await store.status("sig")).offset).toBe(3);
  });

  it("label updates leave the blob read-only and its bytes untouched", async () => {
    const data = bytes(1000);
    const d = await put(data);
    await store.update({ digest: d, labels: { a: "1" } });
    const blob = join(dir.path, "blobs", "sha256", d.slice(7));
    expect((await stat(blob)).mode & 0o777).toBe(0o444);
    expect(digestOf(await readFile(blob))).toBe(d);
  });
});

describe("FsStore names (index.json)", () => {
  it("set/get/list/delete names as annotated index entries", async () => {
    const m = Buffer.from('{"schemaVersion":2}');
    const d = await put(m);
    const desc = { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: d, size: m.byteLength };
    await store.setName("demo:1", desc);
    await store.setName("demo:2", { ...desc, annotations: { a: "b" } });
    await store.setName("demo:1", { ...desc, size: m.byteLength }); // replace, not duplicate
    expect(await store.getName("demo:1")).toEqual(desc);
    expect(await store.getName("demo:2")).toEqual({ ...desc, annotations: { a: "b" } });
    const index = JSON.parse(await readFile(join(dir.path, "index.json"), "utf8"));
    expect(index.manifests.map((x: { annotations: Record<string, string> }) => x.annotations["org.opencontainers.image.ref.name"])).toEqual(["demo:1", "demo:2"]);
    expect((await store.listNames()).map((n) => n.name)).toEqual(["demo:1", "demo:2"]);
    // The annotation is the name; it is not returned as part of the descriptor.
    await store.setName("demo:3", { ...desc, annotations: { "org.opencontainers.image.ref.name": "ignored" } });
    expect(await store.getName("demo:3")).toEqual(desc);
    await store.deleteName("demo:3");
    await store.deleteName("demo:1");
    expect(await codeOf(store.getName("demo:1"))).toBe("NotFound");
    expect(await codeOf(store.deleteName("demo:1"))).toBe("NotFound");
  });

  it("concurrent name updates from several store instances all land", async () => {
    const d = digestOf("x");
    const stores = await Promise.all([0, 1, 2, 3].map(() => openFsStore(dir.path)));
    await Promise.all(
      Array.from({ length: 24 }, (_, i) => stores[i % 4]!.setName(`n${i}`, { mediaType: "application/octet-stream", digest: d, size: 1 })),
    );
    expect((await store.listNames()).length).toBe(24);
  });
});

describe("FsStore hostile input", () => {
  it.each([
    "sha256:../../x",
    "sha256:../../../../etc/passwd",
    "../../etc/passwd",
    `sha256:${"A".repeat(64)}`,
    "md5:d41d8cd98f00b204e9800998ecf8427e",
    `sha256:${"a".repeat(63)}/`,
  ])("refuses digest %j with InvalidDigest everywhere", async (bad) => {
    const d = bad as Digest;
    expect(await codeOf(store.readerAt({ digest: d }))).toBe("InvalidDigest");
    expect(await codeOf(store.info(d))).toBe("InvalidDigest");
    expect(await codeOf(store.delete(d))).toBe("InvalidDigest");
    expect(await codeOf(store.update({ digest: d, labels: {} }))).toBe("InvalidDigest");
    expect(await codeOf(store.writer({ ref: "ok", expected: d }))).toBe("InvalidDigest");
    const w = await store.writer({ ref: "ok2" });
    expect(await codeOf(w.commit(undefined, d))).toBe("InvalidDigest");
  });

  it.each(["", "a/b", "../x", "..", "x\u0000y", "a\\b", "line\nbreak"])("refuses ingest ref %j with InvalidArgument", async (ref) => {
    expect(await codeOf(store.writer({ ref }))).toBe("InvalidArgument");
    expect(await codeOf(store.status(ref))).toBe("InvalidArgument");
    expect(await codeOf(store.abort(ref))).toBe("InvalidArgument");
  });

  it.each(["", "../x", "a b", "name/../x", "-lead", "x\u0000", "é", "a//b"])("refuses name %j with InvalidReference", async (name) => {
    const desc = { mediaType: "application/octet-stream", digest: digestOf("x"), size: 1 };
    expect(await codeOf(store.setName(name, desc))).toBe("InvalidReference");
    expect(await codeOf(store.getName(name))).toBe("InvalidReference");
  });

  it("nothing was created outside the root by hostile calls", async () => {
    const parent = join(dir.path, "..");
    const before = (await readdir(parent)).sort();
    await codeOf(store.readerAt({ digest: "sha256:../../escape" as Digest }));
    await codeOf(store.writer({ ref: "../../escape" }));
    expect((await readdir(parent)).sort()).toEqual(before);
    expect((await readdir(dir.path)).sort()).toEqual([".ferry", "blobs", "index.json", "ingest", "oci-layout"]);
  });

  it("many handles opening one fresh root at once all succeed and agree on the layout", async () => {
    const other = await tempDir();
    const root = join(other.path, "fresh");
    const stores = await Promise.all(Array.from({ length: 8 }, () => openFsStore(root)));
    await Promise.all(stores.map((s, i) => s.setName(`n${i}`, { mediaType: "application/octet-stream", digest: digestOf("x"), size: 1 })));
    expect(JSON.parse(await readFile(join(root, "oci-layout"), "utf8"))).toEqual({ imageLayoutVersion: "1.0.0" });
    expect((await stores[0]!.listNames()).length).toBe(8);
    expect((await readdir(root)).sort()).toEqual([".ferry", "blobs", "index.json", "ingest", "oci-layout"]);
    await other.cleanup();
  });

  it("refuses a layout of an unknown version", async () => {
    const other = await tempDir();
    await writeFile(join(other.path, "oci-layout"), '{"imageLayoutVersion":"9.9.9"}');
    expect(await codeOf(openFsStore(other.path))).toBe("FailedPrecondition");
    await other.cleanup();
  });
});
