/** A server process killed with SIGKILL mid-upload; another process resumes the session. */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { hashWasmDigesters, openFsStore } from "@ferry/store-fs";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FsRegistryStorage } from "../src/index.ts";
import { randomBlob, sha256, startRegistry, type Running } from "./helpers.ts";

const serveScript = fileURLToPath(new URL("./fixtures/serve.ts", import.meta.url));

async function spawnServer(dir: string, mode: string, writerIdleMs = 5000) {
  const args = ["--import", "tsx", serveScript, dir, mode];
  const env = { ...process.env, FERRY_TEST_WRITER_IDLE_MS: String(writerIdleMs) };
  const child = spawn(process.execPath, args, { stdio: ["pipe", "pipe", "inherit"], env });
  const [line] = (await once(child.stdout, "data")) as [Buffer];
  const { url } = JSON.parse(line.toString().split("\n")[0]!) as { url: string };
  return { url, child };
}

describe.each(["node", "hash-wasm"])("crash and resume across processes (%s digesters)", (mode) => {
  let dir: string;
  let r: Running | undefined;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-registry-crash-"));
  });
  afterEach(async () => {
    await r?.close();
    r = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  it("after SIGKILL right after a 202 another server reports every acknowledged byte, and the upload completes", async () => {
    const data = randomBlob(6 * 1024 * 1024 + 12345);
    const { url, child } = await spawnServer(dir, mode);
    const post = await fetch(`${url}/v2/crash/blobs/uploads/`, { method: "POST" });
    const path = post.headers.get("location")!;
    const first = 4 * 1024 * 1024 + 777;
    const p = await fetch(`${url}${path}`, { method: "PATCH", body: data.subarray(0, first), headers: { "Content-Range": `0-${first - 1}` } });
    expect(p.status).toBe(202);
    // A chunk far below store-fs's 1 MiB write batch: without a flush before the 202 it would
    // still be in the dead process's memory.
    const part = first + 1000;
    const small = await fetch(`${url}${path}`, { method: "PATCH", body: data.subarray(first, part), headers: { "Content-Range": `${first}-${part - 1}` } });
    expect(small.status).toBe(202);
    expect(small.headers.get("range")).toBe(`0-${part - 1}`);
    child.kill("SIGKILL");
    await once(child, "exit");

    // This process takes over: the dead holder's ingest lock is recovered by the store.
    const store = await openFsStore(join(dir, "store"), mode === "hash-wasm" ? { digesters: hashWasmDigesters, checkpointBytes: 64 * 1024 } : {});
    r = await startRegistry({ store, storage: new FsRegistryStorage(join(dir, "meta")) });
    const st = await fetch(`${r.url}${path}`);
    expect(st.status).toBe(204);
    const m = /^0-(\d+)$/.exec(st.headers.get("range") ?? "");
    expect(m).not.toBeNull();
    const offset = Number(m![1]) + 1;
    // Every acknowledged byte was flushed to the ingest file before its 202.
    expect(offset).toBe(part);

    const rest = await fetch(`${r.url}${path}`, {
      method: "PATCH",
      body: data.subarray(offset),
      headers: { "Content-Range": `${offset}-${data.length - 1}` },
    });
    expect(rest.status).toBe(202);
    const put = await fetch(`${r.url}${path}?digest=${sha256(data)}`, { method: "PUT" });
    expect(put.status).toBe(201);
    const got = Buffer.from(await (await fetch(`${r.url}/v2/crash/blobs/${sha256(data)}`)).arrayBuffer());
    expect(got.equals(data)).toBe(true);
    expect(await store.listStatuses()).toEqual([]);
  });
});

describe("two live server processes on one directory", () => {
  let dir: string;
  let r: Running | undefined;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-registry-procs-"));
  });
  afterEach(async () => {
    await r?.close();
    r = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  it("hand one upload session back and forth (each waits for the other's writer)", async () => {
    const { url, child } = await spawnServer(dir, "node", 50);
    try {
      const store = await openFsStore(join(dir, "store"));
      r = await startRegistry({ store, storage: new FsRegistryStorage(join(dir, "meta")), writerIdleMs: 50 });
      const data = randomBlob(5 * 256 * 1024);
      const post = await fetch(`${url}/v2/procs/blobs/uploads/`, { method: "POST" });
      const path = post.headers.get("location")!;
      const piece = 256 * 1024;
      for (let i = 0; i < 5; i++) {
        const base = i % 2 === 0 ? r.url : url; // this process first, while the child holds the writer
        const start = i * piece;
        const res = await fetch(`${base}${path}`, {
          method: "PATCH",
          body: data.subarray(start, start + piece),
          headers: { "Content-Range": `${start}-${start + piece - 1}` },
        });
        expect(res.status).toBe(202);
        expect(res.headers.get("range")).toBe(`0-${start + piece - 1}`);
      }
      const put = await fetch(`${url}${path}?digest=${sha256(data)}`, { method: "PUT" });
      expect(put.status).toBe(201);
      const got = Buffer.from(await (await fetch(`${r.url}/v2/procs/blobs/${sha256(data)}`)).arrayBuffer());
      expect(got.equals(data)).toBe(true);
      expect(await store.listStatuses()).toEqual([]);
    } finally {
      child.stdin.end();
      if (child.exitCode === null) await once(child, "exit");
    }
  });
});
