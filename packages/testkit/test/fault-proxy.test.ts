import { createHash, randomBytes } from "node:crypto";
import { Agent, request } from "node:http";
import { afterAll, beforeAll, beforeEach, expect, it } from "vitest";
import { describeWithRegistry, startFaultProxy, type FaultProxy } from "../src/index.ts";

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** Set when the connection failed after the headers arrived. */
  error?: Error;
}

// A fresh connection per request, so one test's dropped socket cannot leak into the next.
const agent = new Agent({ keepAlive: false });

function call(url: string, method = "GET", headers: Record<string, string> = {}, body?: Buffer): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      const done = (error?: Error): void => {
        const r: Reply = { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) };
        if (error) r.error = error;
        resolve(r);
      };
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => (res.complete ? done() : done(new Error("incomplete body"))));
      res.on("error", (e) => done(e));
      res.on("aborted", () => done(new Error("aborted")));
    });
    req.on("error", reject);
    req.end(body);
  });
}

const sha = (b: Uint8Array): string => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const SIZE = 256 * 1024;
const blob = randomBytes(SIZE);
const digest = sha(blob);

describeWithRegistry("startFaultProxy against docker-registry", (ctx) => {
  let proxy: FaultProxy;
  let blobUrl: string;
  beforeAll(async () => {
    proxy = await startFaultProxy({ target: ctx.registry.url });
    // Upload through the proxy: the Location answers must point back at the proxy.
    const start = await call(`${proxy.url}/v2/faults/blobs/uploads/`, "POST", { "content-length": "0" });
    expect(start.status).toBe(202);
    const loc = String(start.headers.location);
    expect(loc.startsWith(`${proxy.url}/v2/faults/blobs/uploads/`)).toBe(true);
    const put = await call(`${loc}${loc.includes("?") ? "&" : "?"}digest=${digest}`, "PUT", {
      "content-type": "application/octet-stream",
      "content-length": String(SIZE),
    }, blob);
    expect(put.status).toBe(201);
    expect(String(put.headers.location).startsWith(proxy.url)).toBe(true);
    blobUrl = `${proxy.url}/v2/faults/blobs/${digest}`;
  });
  afterAll(async () => {
    await proxy?.stop();
  });
  beforeEach(() => {
    proxy.setRules([]);
    proxy.requests.length = 0;
  });

  it("passes requests through unchanged and logs them", async () => {
    const r = await call(blobUrl);
    expect(r.status).toBe(200);
    expect(sha(r.body)).toBe(digest);
    expect(proxy.requests).toEqual([{ method: "GET", path: `/v2/faults/blobs/${digest}`, status: 200, bytes: SIZE, faults: [] }]);
    const ranged = await call(blobUrl, "GET", { range: "bytes=100-" });
    expect(ranged.status).toBe(206);
    expect(ranged.body.equals(blob.subarray(100))).toBe(true);
  });

  it("dropAfterBytes cuts the connection mid-body, for the first N matches only", async () => {
    proxy.setRules([{ method: "GET", path: /\/blobs\/sha256:/, count: 1, dropAfterBytes: 10_000 }]);
    const first = await call(blobUrl);
    expect(first.status).toBe(200);
    expect(first.error).toBeDefined();
    expect(first.body.length).toBe(10_000);
    expect(first.body.equals(blob.subarray(0, 10_000))).toBe(true);
    const second = await call(blobUrl);
    expect(second.error).toBeUndefined();
    expect(sha(second.body)).toBe(digest);
    expect(proxy.requests.map((r) => r.rule)).toEqual([0, undefined]);
  });

  it("a global-flag path regex matches every time", async () => {
    proxy.setRules([{ path: /blobs/g, status: 503 }]);
    for (let i = 0; i < 3; i++) expect((await call(blobUrl, "HEAD")).status).toBe(503);
  });

  it("rules match by method", async () => {
    proxy.setRules([{ method: "HEAD", status: 503 }]);
    expect((await call(blobUrl, "HEAD")).status).toBe(503);
    expect((await call(blobUrl, "GET")).status).toBe(200);
  });

  it("ignoreRange makes the registry answer 200 with the whole blob", async () => {
    proxy.setRules([{ ignoreRange: true }]);
    const r = await call(blobUrl, "GET", { range: "bytes=1000-" });
    expect(r.status).toBe(200);
    expect(r.headers["content-range"]).toBeUndefined();
    expect(sha(r.body)).toBe(digest);
    expect(proxy.requests[0]!.faults).toEqual(["ignoreRange"]);
  });

  it("status answers with Retry-After and a distribution-style JSON error, without the upstream", async () => {
    proxy.setRules([{ path: "/blobs/", count: 2, status: 429, retryAfter: 3, body: "json" }]);
    for (let i = 0; i < 2; i++) {
      const r = await call(`${blobUrl}?probe=refused${i}`);
      expect(r.status).toBe(429);
      expect(r.headers["retry-after"]).toBe("3");
      expect(JSON.parse(r.body.toString()).errors[0].code).toBe("TOOMANYREQUESTS");
    }
    expect((await call(`${blobUrl}?probe=passed`)).status).toBe(200);
    // Once the passed request shows in the registry log, the refused ones would have too.
    for (let i = 0; i < 100 && !ctx.registry.readLog().includes("probe=passed"); i++) await new Promise((r) => setTimeout(r, 50));
    expect(ctx.registry.readLog()).toContain("probe=passed");
    expect(ctx.registry.readLog()).not.toContain("probe=refused");
  });

  it("status with an empty body", async () => {
    proxy.setRules([{ status: 503 }]);
    const r = await call(blobUrl);
    expect(r.status).toBe(503);
    expect(r.body.length).toBe(0);
    expect(r.headers["retry-after"]).toBeUndefined();
  });

  it("truncateBody keeps the full Content-Length but ends early", async () => {
    proxy.setRules([{ truncateBody: 5000 }]);
    const r = await call(blobUrl);
    expect(r.status).toBe(200);
    expect(r.headers["content-length"]).toBe(String(SIZE));
    expect(r.body.length).toBe(5000);
    expect(r.error).toBeDefined();
  });

  it("corruptByteAt flips exactly one byte", async () => {
    proxy.setRules([{ corruptByteAt: 70_000 }]);
    const r = await call(blobUrl);
    expect(r.body.length).toBe(SIZE);
    expect(sha(r.body)).not.toBe(digest);
    const diffs: number[] = [];
    for (let i = 0; i < SIZE; i++) if (r.body[i] !== blob[i]) diffs.push(i);
    expect(diffs).toEqual([70_000]);
    expect(r.body[70_000]).toBe(blob[70_000]! ^ 0xff);
  });

  it("delayMs holds the request back at least that long", async () => {
    proxy.setRules([{ delayMs: 300 }]);
    const t = performance.now();
    const r = await call(blobUrl, "HEAD");
    expect(performance.now() - t).toBeGreaterThanOrEqual(290);
    expect(r.status).toBe(200);
  });

  it("rateBytesPerSec paces the body", async () => {
    proxy.setRules([{ rateBytesPerSec: 512 * 1024 }]);
    const t = performance.now();
    const r = await call(blobUrl);
    // 256 KiB at 512 KiB/s cannot arrive in less than ~0.5 s.
    expect(performance.now() - t).toBeGreaterThanOrEqual(450);
    expect(sha(r.body)).toBe(digest);
  });

  it("dropRequestAfterBytes forwards part of an upload, then cuts both connections", async () => {
    proxy.setRules([{ method: "PATCH", count: 1, dropRequestAfterBytes: 100_000 }]);
    const start = await call(`${proxy.url}/v2/faults/blobs/uploads/`, "POST", { "content-length": "0" });
    const loc = String(start.headers.location);
    const patch = await call(loc, "PATCH", { "content-type": "application/octet-stream", "content-length": String(SIZE) }, blob).catch(
      (e: unknown) => e,
    );
    expect(patch).toBeInstanceOf(Error);
    expect(proxy.requests.at(-1)).toMatchObject({ method: "PATCH", status: 0, faults: ["dropRequestAfterBytes"] });
    // The registry got exactly the prefix; distribution 2.8 then refuses to resume that session.
    // The registry logs the interrupted PATCH on its own schedule: poll for the line.
    const seen = /client disconnected during blob PATCH.*copied=(\d+)/;
    for (let i = 0; i < 100 && !seen.test(ctx.registry.readLog()); i++) await new Promise((r) => setTimeout(r, 50));
    expect(seen.exec(ctx.registry.readLog())?.[1]).toBe("100000");
    const status = await call(loc);
    expect(status.status).toBe(404);
    expect(JSON.parse(status.body.toString()).errors[0].code).toBe("BLOB_UPLOAD_INVALID");
  });

  it("hangUp closes the connection without a response", async () => {
    proxy.setRules([{ hangUp: true, count: 1 }]);
    await expect(call(blobUrl)).rejects.toThrow();
    expect(proxy.requests.at(-1)).toMatchObject({ status: 0, faults: ["hangUp"] });
    expect((await call(blobUrl)).status).toBe(200);
  });

  it("stallAfterBytes sends a prefix and then nothing, keeping the connection open", async () => {
    proxy.setRules([{ stallAfterBytes: 20_000 }]);
    const got = await new Promise<{ bytes: number; ended: boolean }>((resolve) => {
      const req = request(blobUrl, { agent }, (res) => {
        let bytes = 0;
        let ended = false;
        res.on("data", (c: Buffer) => {
          bytes += c.length;
          if (bytes >= 20_000) {
            // Give a broken proxy the chance to send more (or end) before looking.
            setTimeout(() => {
              resolve({ bytes, ended });
              req.destroy();
            }, 300);
          }
        });
        res.on("end", () => (ended = true));
        res.on("error", () => undefined);
      });
      req.on("error", () => undefined);
      req.end();
    });
    expect(got).toEqual({ bytes: 20_000, ended: false });
    expect(proxy.requests.at(-1)!.faults).toEqual(["stallAfterBytes"]);
  });

  it("rejects nonsense rules", () => {
    expect(() => proxy.setRules([{ dropAfterBytes: -1 }])).toThrow(/dropAfterBytes/);
    expect(() => proxy.setRules([{ rateBytesPerSec: 0 }])).toThrow(/rateBytesPerSec/);
  });
});
