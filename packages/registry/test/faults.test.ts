import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { request } from "node:http";
import { Faults } from "../src/faults.ts";
import { errorCode, pushBlob, randomBlob, startRegistry, type Running } from "./helpers.ts";

/** GET with node:http so a cut connection is observable with the bytes received before it. */
function rawGet(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Buffer; complete: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), complete: res.complete }));
      res.on("error", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), complete: false }));
      res.on("aborted", () => undefined);
    });
    req.on("error", reject);
    req.end();
  });
}

describe("fault injection", () => {
  let r: Running;
  let digest: string;
  const data = randomBlob(200_000);
  beforeAll(async () => {
    r = await startRegistry();
    digest = await pushBlob(r.url, "f", data);
  });
  afterAll(async () => r.close());

  it("answers 429 with Retry-After for the first N matching requests only", async () => {
    r.registry.setFaults([{ method: "GET", path: "/blobs/", status: 429, retryAfter: 2, count: 2 }]);
    const a = await fetch(`${r.url}/v2/f/blobs/${digest}`);
    expect(a.status).toBe(429);
    expect(a.headers.get("retry-after")).toBe("2");
    expect(await errorCode(a)).toBe("TOOMANYREQUESTS");
    expect((await fetch(`${r.url}/v2/f/blobs/${digest}`)).status).toBe(429);
    expect((await fetch(`${r.url}/v2/f/blobs/${digest}`, { method: "HEAD" })).status).toBe(200);
    const ok = await fetch(`${r.url}/v2/f/blobs/${digest}`);
    expect(ok.status).toBe(200);
    await ok.arrayBuffer();
  });

  it("answers a 5xx", async () => {
    r.registry.setFaults([{ path: "^/v2/$", status: 503, count: 1 }]);
    expect((await fetch(`${r.url}/v2/`)).status).toBe(503);
    expect((await fetch(`${r.url}/v2/`)).status).toBe(200);
  });

  it("drops the connection after N bytes of a response", async () => {
    r.registry.setFaults([{ method: "GET", path: "/blobs/sha256", dropAfterBytes: 50_000, count: 1 }]);
    const cut = await rawGet(`${r.url}/v2/f/blobs/${digest}`);
    expect(cut.status).toBe(200);
    expect(cut.complete).toBe(false);
    expect(cut.body.length).toBeLessThanOrEqual(50_000);
    expect(cut.body.equals(data.subarray(0, cut.body.length))).toBe(true);
    const whole = await rawGet(`${r.url}/v2/f/blobs/${digest}`);
    expect(whole.complete).toBe(true);
    expect(whole.body.equals(data)).toBe(true);
  });

  it("ignores Range when asked", async () => {
    r.registry.setFaults([{ path: "/blobs/", ignoreRange: true }]);
    const res = await fetch(`${r.url}/v2/f/blobs/${digest}`, { headers: { Range: "bytes=100-199" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-range")).toBeNull();
    expect((await res.arrayBuffer()).byteLength).toBe(data.length);
  });

  it("corrupts one byte", async () => {
    r.registry.setFaults([{ path: "/blobs/", corruptByteAt: 1234 }]);
    const got = Buffer.from(await (await fetch(`${r.url}/v2/f/blobs/${digest}`)).arrayBuffer());
    expect(got.length).toBe(data.length);
    expect(got[1234]).toBe(data[1234]! ^ 0xff);
    got[1234] = data[1234]!;
    expect(got.equals(data)).toBe(true);
  });

  it("slows a response to a given rate", async () => {
    r.registry.setFaults([{ path: "/blobs/", rateBytesPerSec: 1_000_000 }]);
    const res = await fetch(`${r.url}/v2/f/blobs/${digest}`);
    // No timing assertion (shared machine): the bytes must still arrive intact.
    expect(Buffer.from(await res.arrayBuffer()).equals(data)).toBe(true);
  });

  it("drops an upload after N request bytes, keeping what arrived", async () => {
    r.registry.setFaults([]);
    const post = await fetch(`${r.url}/v2/f/blobs/uploads/`, { method: "POST" });
    const loc = `${r.url}${post.headers.get("location")!}`;
    r.registry.setFaults([{ method: "PATCH", dropAfterBytes: 70_000, count: 1 }]);
    await fetch(loc, { method: "PATCH", body: data }).then(
      (res) => res.arrayBuffer(),
      () => undefined,
    );
    r.registry.setFaults([]);
    // The status tells the client where to go on from.
    let range = "";
    for (let i = 0; i < 50 && range !== "0-69999"; i++) {
      range = (await fetch(loc)).headers.get("range") ?? "";
      if (range !== "0-69999") await new Promise((res) => setTimeout(res, 20));
    }
    expect(range).toBe("0-69999");
    const rest = await fetch(loc, { method: "PATCH", body: data.subarray(70_000), headers: { "Content-Range": `70000-${data.length - 1}` } });
    expect(rest.status).toBe(202);
    const put = await fetch(`${loc}?digest=${digest}`, { method: "PUT" });
    expect(put.status).toBe(201);
  });
});

describe("rate fault on a fake clock", () => {
  it("lets through no more than rateBytesPerSec per second of a response body", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "Date"] });
    try {
      const plan = new Faults([{ rateBytesPerSec: 10_000 }]).plan("GET", "/v2/x/blobs/sha256:1");
      expect(plan?.response).toHaveLength(1);
      const slow = plan!.response[0]!();
      let received = 0;
      slow.on("data", (c: Buffer) => (received += c.length));
      slow.end(Buffer.alloc(100_000));
      await vi.advanceTimersByTimeAsync(0);
      // No clock time has passed: at most the first piece (a tenth of a second's worth).
      expect(received).toBeLessThanOrEqual(1_000);
      await vi.advanceTimersByTimeAsync(4_000);
      expect(received).toBeGreaterThanOrEqual(39_000);
      expect(received).toBeLessThanOrEqual(41_000);
      await vi.advanceTimersByTimeAsync(6_000);
      expect(received).toBe(100_000);
    } finally {
      vi.useRealTimers();
    }
  });
});
