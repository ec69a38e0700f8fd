import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hashWasmDigesters, openFsStore } from "@ferry/store-fs";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FsRegistryStorage, type RegistryOptions } from "../src/index.ts";
import { errorCode, pushImage, randomBlob, sha256, startRegistry, type Running } from "./helpers.ts";

describe.each([
  ["node:crypto (re-hash on reopen)", false],
  ["hash-wasm checkpoints", true],
])("fs-backed registry, %s", (_label, checkpoints) => {
  let dir: string;
  const running: Running[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-registry-"));
  });
  afterEach(async () => {
    for (const r of running.splice(0)) await r.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function start(extra: RegistryOptions = {}): Promise<Running> {
    const store = await openFsStore(join(dir, "store"), checkpoints ? { digesters: hashWasmDigesters, checkpointBytes: 1024 } : {});
    const r = await startRegistry({ store, storage: new FsRegistryStorage(join(dir, "meta")), ...extra });
    running.push(r);
    return r;
  }

  it("resumes an upload session after a server restart", async () => {
    const data = randomBlob(300_000);
    const a = await start();
    const post = await fetch(`${a.url}/v2/p/blobs/uploads/`, { method: "POST" });
    const path = post.headers.get("location")!;
    const p1 = await fetch(`${a.url}${path}`, { method: "PATCH", body: data.subarray(0, 100_000), headers: { "Content-Range": "0-99999" } });
    expect(p1.status).toBe(202);
    await a.close();
    running.splice(running.indexOf(a), 1);

    const b = await start();
    const st = await fetch(`${b.url}${path}`);
    expect(st.status).toBe(204);
    expect(st.headers.get("range")).toBe("0-99999");
    const p2 = await fetch(`${b.url}${path}`, { method: "PATCH", body: data.subarray(100_000), headers: { "Content-Range": "100000-299999" } });
    expect(p2.status).toBe(202);
    const put = await fetch(`${b.url}${path}?digest=${sha256(data)}`, { method: "PUT" });
    expect(put.status).toBe(201);
    const get = await fetch(`${b.url}/v2/p/blobs/${sha256(data)}`);
    expect(Buffer.from(await get.arrayBuffer()).equals(data)).toBe(true);
    expect(await b.registry.store.listStatuses({ refPrefix: "upload-" })).toEqual([]);
  });

  it("keeps a session's writer, and so its running hash, open between PATCHes in one process", async () => {
    const store = await openFsStore(join(dir, "store"), checkpoints ? { digesters: hashWasmDigesters, checkpointBytes: 1024 } : {});
    const opened: string[] = [];
    const open = store.writer.bind(store);
    store.writer = async (o) => {
      opened.push(o.ref);
      return open(o);
    };
    const a = await startRegistry({ store, storage: new FsRegistryStorage(join(dir, "meta")), writerIdleMs: 600_000 });
    running.push(a);
    const data = randomBlob(50_000);
    const post = await fetch(`${a.url}/v2/warm/blobs/uploads/`, { method: "POST" });
    const path = post.headers.get("location")!;
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${a.url}${path}`, { method: "PATCH", body: data.subarray(i * 10_000, (i + 1) * 10_000) });
      expect(res.status).toBe(202);
    }
    expect((await fetch(`${a.url}${path}?digest=${sha256(data)}`, { method: "PUT" })).status).toBe(201);
    // Opened by the POST (and closed: no file held before a byte came), then by the first
    // PATCH only: no later PATCH reopened the ingest (a reopen rebuilds the hash).
    expect(opened.filter((ref) => ref.startsWith("upload-"))).toHaveLength(2);
  });

  it("verifies a sha512 digest on the final PUT of a chunked session", async () => {
    const a = await start();
    const data = randomBlob(70_000);
    const d512 = `sha512:${createHash("sha512").update(data).digest("hex")}`;
    for (const [digest, status] of [[`sha512:${createHash("sha512").update("other").digest("hex")}`, 400], [d512, 201]] as const) {
      const post = await fetch(`${a.url}/v2/five12/blobs/uploads/`, { method: "POST" });
      const path = post.headers.get("location")!;
      expect((await fetch(`${a.url}${path}`, { method: "PATCH", body: data })).status).toBe(202);
      const put = await fetch(`${a.url}${path}?digest=${digest}`, { method: "PUT" });
      expect(put.status).toBe(status);
    }
    const got = await fetch(`${a.url}/v2/five12/blobs/${d512}`);
    expect(Buffer.from(await got.arrayBuffer()).equals(data)).toBe(true);
    expect(await a.registry.store.listStatuses()).toEqual([]);
  });

  it("lets two servers sharing one directory take turns on one session", async () => {
    const a = await start({ writerIdleMs: 20 });
    const b = await start({ writerIdleMs: 20 });
    const data = randomBlob(40_000);
    const post = await fetch(`${a.url}/v2/shared/blobs/uploads/`, { method: "POST" });
    const path = post.headers.get("location")!;
    for (let i = 0; i < 4; i++) {
      const srv = i % 2 === 0 ? b : a; // b first, while a still holds the writer
      const start = i * 10_000;
      const res = await fetch(`${srv.url}${path}`, {
        method: "PATCH",
        body: data.subarray(start, start + 10_000),
        headers: { "Content-Range": `${start}-${start + 9_999}` },
      });
      expect(res.status).toBe(202);
      expect(res.headers.get("range")).toBe(`0-${start + 9_999}`);
    }
    const put = await fetch(`${b.url}${path}?digest=${sha256(data)}`, { method: "PUT" });
    expect(put.status).toBe(201);
    // Metadata is shared too: the blob and a manifest pushed through one are visible in the other.
    expect((await fetch(`${a.url}/v2/shared/blobs/${sha256(data)}`, { method: "HEAD" })).status).toBe(200);
    const img = await pushImage(a.url, "shared", "v1");
    const got = await fetch(`${b.url}/v2/shared/manifests/v1`);
    expect(got.headers.get("docker-content-digest")).toBe(img.digest);
    const tags = (await (await fetch(`${b.url}/v2/shared/tags/list`)).json()) as { tags: string[] };
    expect(tags.tags).toEqual(["v1"]);
    const cat = (await (await fetch(`${b.url}/v2/_catalog`)).json()) as { repositories: string[] };
    expect(cat.repositories).toEqual(["shared"]);
  });

  it("answers 503 with Retry-After when another server keeps the session's writer past lockWaitMs", async () => {
    const a = await start({ writerIdleMs: 10_000 });
    const b = await start({ lockWaitMs: 100 });
    const post = await fetch(`${a.url}/v2/busy/blobs/uploads/`, { method: "POST" });
    const path = post.headers.get("location")!;
    // A chunk through a: its writer stays open (writerIdleMs).
    expect((await fetch(`${a.url}${path}`, { method: "PATCH", body: "x" })).status).toBe(202);
    const res = await fetch(`${b.url}${path}`, { method: "PATCH", body: "y" });
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("1");
    expect(await errorCode(res)).toBe("UNAVAILABLE");
    // The holder goes on undisturbed.
    expect((await fetch(`${a.url}${path}`, { method: "PATCH", body: "z" })).status).toBe(202);
  });

  it("persists tags, links and referrers across restarts; cancelled sessions leave nothing", async () => {
    const a = await start();
    const img = await pushImage(a.url, "keep/me", "v1");
    const post = await fetch(`${a.url}/v2/keep/me/blobs/uploads/`, { method: "POST" });
    await fetch(`${a.url}${post.headers.get("location")!}`, { method: "PATCH", body: "abc" });
    const del = await fetch(`${a.url}${post.headers.get("location")!}`, { method: "DELETE" });
    expect(del.status).toBe(204);
    expect(await a.registry.store.listStatuses()).toEqual([]);
    expect(await a.registry.storage.listUploads()).toEqual([]);
    await a.close();
    running.splice(running.indexOf(a), 1);

    const b = await start();
    const got = await fetch(`${b.url}/v2/keep/me/manifests/v1`);
    expect(got.status).toBe(200);
    expect(Buffer.from(await got.arrayBuffer()).equals(img.manifest)).toBe(true);
    const layer = await fetch(`${b.url}/v2/keep/me/blobs/${sha256(img.layers[0]!)}`);
    expect(Buffer.from(await layer.arrayBuffer()).equals(img.layers[0]!)).toBe(true);
    const gone = await fetch(`${b.url}${post.headers.get("location")!}`);
    expect(await errorCode(gone)).toBe("BLOB_UPLOAD_UNKNOWN");
  });

  it("keeps a reopened writer usable after the request that reopened it (no request signal bound to it)", async () => {
    const a = await start({ writerIdleMs: 400, lockWaitMs: 50 });
    const post = await fetch(`${a.url}/v2/sig/blobs/uploads/`, { method: "POST" });
    const path = post.headers.get("location")!;
    await new Promise((res) => setTimeout(res, 600)); // idle: the writer closes
    const p1 = await fetch(`${a.url}${path}`, { method: "PATCH", body: "hello ", headers: { "Content-Range": "0-5" } });
    expect(p1.status).toBe(202); // reopened here, with a lock wait of 50 ms
    await new Promise((res) => setTimeout(res, 150)); // the lock-wait signal has fired meanwhile
    const p2 = await fetch(`${a.url}${path}`, { method: "PATCH", body: "world", headers: { "Content-Range": "6-10" } });
    expect(p2.status).toBe(202);
    const put = await fetch(`${a.url}${path}?digest=${sha256("hello world")}`, { method: "PUT" });
    expect(put.status).toBe(201);
  });

  it("purges abandoned sessions on a timer", async () => {
    const a = await start({ uploadTimeoutMs: 50, purgeIntervalMs: 20, writerIdleMs: 10 });
    const post = await fetch(`${a.url}/v2/old/blobs/uploads/`, { method: "POST" });
    await fetch(`${a.url}${post.headers.get("location")!}`, { method: "PATCH", body: "abc" });
    const deadline = Date.now() + 10_000;
    while ((await a.registry.storage.listUploads()).length > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(await a.registry.storage.listUploads()).toEqual([]);
    expect(await a.registry.store.listStatuses()).toEqual([]);
  });
});
