/**
 * Clients that are broken or hostile: the registry answers them and stays up, bounded, and
 * usable by everyone else.
 */
import { readdirSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openFsStore } from "@ferry/store-fs";
import { afterEach, describe, expect, it } from "vitest";
import { MemoryRegistryStorage } from "../src/index.ts";
import { pushBlob, pushImage, randomBlob, startRegistry, type Running } from "./helpers.ts";

const running: Running[] = [];
afterEach(async () => {
  for (const r of running.splice(0)) await r.close();
});
async function start(options: Parameters<typeof startRegistry>[0] = {}): Promise<Running> {
  const r = await startRegistry(options);
  running.push(r);
  return r;
}

/** Send raw bytes; resolve with the status line of the answer (or what the socket said). */
function raw(port: number, text: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1", () => s.write(text));
    let got = "";
    s.on("data", (d) => {
      got += d.toString("latin1");
      if (got.includes("\r\n")) {
        resolve(got.slice(0, got.indexOf("\r\n")));
        s.destroy();
      }
    });
    s.on("error", (e) => resolve(`error ${e.message}`));
    s.on("close", () => resolve(got === "" ? "closed" : got.slice(0, got.indexOf("\r\n"))));
  });
}

describe("hostile clients", () => {
  it.each([
    ["a Host header that is no host", "GET /v2/ HTTP/1.1\r\nHost: a%zz\r\n\r\n"],
    ["a port out of range", "GET /v2/ HTTP/1.1\r\nHost: x:99999\r\n\r\n"],
    ["a request target that is no URL", "GET //[/v2/ HTTP/1.1\r\nHost: x\r\n\r\n"],
  ])("answers %s with 400 and keeps serving", async (_, request) => {
    const r = await start();
    expect(await raw(r.server.port, request)).toBe("HTTP/1.1 400 Bad Request");
    expect((await fetch(`${r.url}/v2/`)).status).toBe(200);
  });

  it("closes a connection gone quiet mid-PATCH, so the session can be resumed from its status", async () => {
    const r = await start({ idleTimeoutMs: 300 });
    const loc = (await fetch(`${r.url}/v2/q/blobs/uploads/`, { method: "POST" })).headers.get("location")!;
    const s = connect(r.server.port, "127.0.0.1");
    await new Promise((res) => s.once("connect", res));
    s.write(`PATCH ${loc} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 5000\r\n\r\n${"a".repeat(1000)}`);
    const closed = new Promise((res) => s.once("close", res));
    s.on("error", () => {});
    await closed; // by the server, after 300 ms of silence
    const status = await fetch(new URL(loc, r.url));
    expect(status.status).toBe(204);
    expect(status.headers.get("range")).toBe("0-999");
    const resume = await fetch(new URL(loc, r.url), {
      method: "PATCH",
      headers: { "Content-Type": "application/octet-stream", "Content-Range": "1000-1001" },
      body: "bb",
    });
    expect(resume.status).toBe(202);
    expect(resume.headers.get("range")).toBe("0-1001");
  });

  it("holds no file open per upload session it has not been sent a byte for", async () => {
    const dir = await mkdtemp(join(tmpdir(), "ferry-reg-fds-"));
    try {
      const r = await start({ store: await openFsStore(dir, { fsync: false }) });
      const fds = () => readdirSync("/proc/self/fd").length;
      const before = fds();
      for (let i = 0; i < 200; i++) expect((await fetch(`${r.url}/v2/f/blobs/uploads/`, { method: "POST" })).status).toBe(202);
      // Kept open until their idle timer, 200 sessions held 200 descriptors.
      expect(fds() - before).toBeLessThan(50);
      // And they still work.
      const data = randomBlob(3000);
      await pushBlob(r.url, "f", data);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("keeps a bounded record of the scopes asked of its token endpoint", async () => {
    const r = await start({ auth: { scheme: "bearer", users: { u: "p" } } });
    const scope = `repository:${"a".repeat(1000)}:pull`;
    for (let i = 0; i < 1100; i++) await (await fetch(`${r.url}/token?service=x&scope=${scope}`)).arrayBuffer();
    const scopes = r.registry.authStats!.scopes;
    expect(scopes.length).toBe(1000);
    expect(Math.max(...scopes.map((s) => s.length))).toBe(256);
  });

  it("names no invalid mount source in a challenge (no header injection, no 500)", async () => {
    const r = await start({ auth: { scheme: "bearer", users: { u: "p" } } });
    for (const from of ["a%22,error=%22x", "%E4%B8%AD", "a%0d%0aX-Injected:%20yes"]) {
      const res = await fetch(`${r.url}/v2/n/blobs/uploads/?mount=sha256:${"a".repeat(64)}&from=${from}`, { method: "POST" });
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toMatch(/scope="repository:n:pull,push"$/);
      expect(res.headers.get("x-injected")).toBeNull();
    }
  });
});

describe("a DELETE by digest cut short", () => {
  it("leaves the manifest reachable, so the DELETE sent again finishes (tags first, the link last)", async () => {
    // Storage that fails once in the middle of the tag removals, as a crash would stop it.
    class Flaky extends MemoryRegistryStorage {
      failNext = false;
      override async deleteTag(repo: string, tag: string): Promise<boolean> {
        if (this.failNext) {
          this.failNext = false;
          throw new Error("disk went away");
        }
        return super.deleteTag(repo, tag);
      }
    }
    const storage = new Flaky();
    const r = await start({ storage });
    const img = await pushImage(r.url, "del/app", "v1");
    for (const tag of ["v2", "v3"]) {
      const put = await fetch(`${r.url}/v2/del/app/manifests/${tag}`, { method: "PUT", headers: { "Content-Type": "application/vnd.oci.image.manifest.v1+json" }, body: img.manifest });
      expect(put.status).toBe(201);
    }
    storage.failNext = true;
    const first = await fetch(`${r.url}/v2/del/app/manifests/${img.digest}`, { method: "DELETE" });
    expect(first.status).toBe(500);
    expect((await fetch(`${r.url}/v2/del/app/manifests/${img.digest}`, { method: "HEAD" })).status).toBe(200);
    const again = await fetch(`${r.url}/v2/del/app/manifests/${img.digest}`, { method: "DELETE" });
    expect(again.status).toBe(202);
    const tags = (await (await fetch(`${r.url}/v2/del/app/tags/list`)).json()) as { tags: string[] | null };
    expect(tags.tags ?? []).toEqual([]);
    expect((await fetch(`${r.url}/v2/del/app/manifests/v1`)).status).toBe(404);
  });
});
