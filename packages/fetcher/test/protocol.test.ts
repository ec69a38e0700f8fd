/**
 * Protocol corner cases against small node:http servers: redirects and credentials, auth
 * challenges, redaction, pagination, manifest caps, HEAD fallbacks, mirrors, 416, stalls.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { Agent } from "undici";
import { describe, expect, it } from "vitest";
import { digestOf, MediaTypes, type Descriptor } from "@ferry/core";
import { createRegistryResolver, parseRetryAfter, redactUrl, type RequestAuthorizer } from "../src/index.ts";
import { stubsPerTest, type StubServer } from "./stub-server.ts";

const stub = stubsPerTest();

const SECRET = "Bearer s3cr3t-token";
const staticAuth = (): RequestAuthorizer & { challenges: string[][] } => {
  const challenges: string[][] = [];
  return {
    challenges,
    async authorize() {
      return SECRET;
    },
    async onUnauthorized(_u, _s, www) {
      challenges.push(www);
      return true;
    },
  };
};
const fast = { retry: { minDelayMs: 1, maxDelayMs: 5 } };

const blob = Buffer.from("hello blob, ".repeat(1000));
const blobDesc: Descriptor = { mediaType: MediaTypes.OciLayer, digest: digestOf(blob), size: blob.byteLength };
const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.OciManifest, config: blobDesc, layers: [] }));
const manifestDigest = digestOf(manifest);

async function read(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

describe("credentials and redirects", () => {
  it("follows a redirect to another origin without the Authorization header", async () => {
    const other = await stub((_req, res) => res.end(blob));
    const reg = await stub((req, res) => {
      if (req.url?.startsWith("/v2/r/blobs/")) {
        res.writeHead(307, { location: `${other.origin}/storage/blob?X-Signature=abc` }).end();
      } else res.writeHead(404).end();
    });
    const r = createRegistryResolver({ authorizer: staticAuth(), ...fast });
    const f = await r.fetcher(`${reg.host}/r`);
    expect((await read(await f.fetch(blobDesc))).equals(blob)).toBe(true);
    expect(reg.seen[0]!.headers.authorization).toBe(SECRET);
    expect(other.seen[0]!.headers.authorization).toBeUndefined();
    await r.close();
  });

  it("resolves a relative Location against the request URL and keeps credentials on the same origin", async () => {
    const reg = await stub((req, res) => {
      if (req.url === `/v2/r/blobs/${blobDesc.digest}`) res.writeHead(302, { location: "../../elsewhere/data" }).end();
      else if (req.url === "/v2/elsewhere/data") res.end(blob);
      else res.writeHead(404).end();
    });
    const r = createRegistryResolver({ authorizer: staticAuth(), ...fast });
    const f = await r.fetcher(`${reg.host}/r`);
    expect((await read(await f.fetch(blobDesc))).equals(blob)).toBe(true);
    expect(reg.seen.map((s) => s.url)).toEqual([`/v2/r/blobs/${blobDesc.digest}`, "/v2/elsewhere/data"]);
    expect(reg.seen[1]!.headers.authorization).toBe(SECRET);
    await r.close();
  });

  it("sends no credentials to an upload Location on another host", async () => {
    const other = await stub((req, res) => {
      req.resume();
      req.on("end", () => res.writeHead(201, { "docker-content-digest": blobDesc.digest }).end());
    });
    const reg = await stub((req, res) => {
      if (req.method === "HEAD") res.writeHead(404).end();
      else if (req.method === "POST") res.writeHead(202, { location: `${other.origin}/upload/1?_state=xyz` }).end();
      else res.writeHead(400).end();
    });
    const r = createRegistryResolver({ authorizer: staticAuth(), ...fast });
    const p = await r.pusher(`${reg.host}/r`);
    expect(await p.push(blobDesc, { open: () => Readable.from([blob]) })).toBe("pushed");
    expect(reg.seen.every((s) => s.headers.authorization === SECRET)).toBe(true);
    expect(other.seen[0]!.method).toBe("PUT");
    expect(other.seen[0]!.headers.authorization).toBeUndefined();
    expect(other.seen[0]!.url).toContain(`digest=${encodeURIComponent(blobDesc.digest)}`);
    await r.close();
  });

  it("retries once after a 401 the authorizer handled, then reports Unauthorized without secrets", async () => {
    let n = 0;
    const reg = await stub((req, res) => {
      n++;
      if (n === 1) res.writeHead(401, { "www-authenticate": 'Bearer realm="http://auth/token",service="reg"' }).end();
      else if (n === 2) res.writeHead(200, { "content-type": MediaTypes.OciManifest, "docker-content-digest": manifestDigest, "content-length": manifest.byteLength }).end(req.method === "HEAD" ? undefined : manifest);
      else res.writeHead(401, { "content-type": "application/json" }).end(JSON.stringify({ errors: [{ code: "UNAUTHORIZED", message: "token expired" }] }));
    });
    const auth = staticAuth();
    const r = createRegistryResolver({ authorizer: auth, ...fast });
    expect((await r.resolve(`${reg.host}/r:v1`)).descriptor.digest).toBe(manifestDigest);
    expect(auth.challenges).toEqual([['Bearer realm="http://auth/token",service="reg"']]);
    const err = (await r.resolve(`${reg.host}/r:v2`).catch((e: unknown) => e)) as Error & { code: string; details: Record<string, unknown> };
    expect(err.code).toBe("Unauthorized");
    expect(JSON.stringify({ m: err.message, d: err.details })).not.toContain("s3cr3t");
    expect(n).toBe(4); // v2: 401, onUnauthorized, retried once, 401 again: no third try
    await r.close();
  });

  it("redacts upload state and signatures in error URLs", () => {
    const u = redactUrl("https://user:pw@reg.example/v2/r/blobs/uploads/abc?_state=SECRET&digest=sha256:00&X-Amz-Signature=zz");
    expect(u).not.toContain("SECRET");
    expect(u).not.toContain("zz");
    expect(u).not.toContain("pw");
    expect(u).toContain("digest=sha256%3A00");
  });
});

describe("Location headers", () => {
  it.each([
    ["malformed", "http://[zz/blob"],
    ["not http(s)", "file:///etc/passwd"],
  ])("a %s redirect is a Registry error, not retried", async (_, location) => {
    const reg = await stub((_req, res) => res.writeHead(307, { location }).end());
    const r = createRegistryResolver(fast);
    const f = await r.fetcher(`${reg.host}/r`);
    await expect(f.fetch(blobDesc).then(read)).rejects.toMatchObject({ code: "Registry", message: expect.stringMatching(/Location/) });
    expect(reg.seen.filter((s) => s.url.includes("/blobs/")).length).toBe(1);
    await r.close();
  });

  it("a malformed upload Location, from a mount or a new session, is a Registry error, not retried", async () => {
    const reg = await stub((req, res) => {
      if (req.method === "HEAD") return void res.writeHead(404).end();
      res.writeHead(202, { location: "http://[zz/upload" }).end();
    });
    const r = createRegistryResolver(fast);
    const p = await r.pusher(`${reg.host}/r`);
    await expect(p.push(blobDesc, { open: () => Readable.from([blob]) }, { mountFrom: "other" })).rejects.toMatchObject({ code: "Registry", message: expect.stringMatching(/malformed Location/) });
    expect(reg.seen.filter((s) => s.method === "POST").length).toBe(1);
    await expect(p.push(blobDesc, { open: () => Readable.from([blob]) })).rejects.toMatchObject({ code: "Registry" });
    expect(reg.seen.filter((s) => s.method === "POST").length).toBe(2);
    await r.close();
  });
});

describe("tags pushed", () => {
  it.each(["../../victim/manifests/latest", "v2?x=1", "-x", "x".repeat(129)])("refuses %s before any request (InvalidReference)", async (tag) => {
    const reg = await stub((_req, res) => res.writeHead(500).end());
    const r = createRegistryResolver(fast);
    const p = await r.pusher(`${reg.host}/mine`);
    const desc: Descriptor = { mediaType: MediaTypes.OciManifest, digest: manifestDigest, size: manifest.byteLength };
    await expect(p.push(desc, { open: () => Readable.from([manifest]) }, { tag })).rejects.toMatchObject({ code: "InvalidReference" });
    await expect(p.tag!(desc, tag)).rejects.toMatchObject({ code: "InvalidReference" });
    expect(reg.seen).toEqual([]);
    await r.close();
  });
});

describe("retries", () => {
  it("parses Retry-After as seconds or an HTTP date", () => {
    expect(parseRetryAfter("7")).toBe(7000);
    const now = Date.parse("2026-01-01T00:00:00Z");
    expect(parseRetryAfter("Thu, 01 Jan 2026 00:00:05 GMT", now)).toBe(5000);
    expect(parseRetryAfter("soon")).toBeUndefined();
    // Not delta-seconds, not a date: no wait of 0 ms (Date.parse reads these as days of 2001).
    expect(parseRetryAfter("1.5", now)).toBeUndefined();
    expect(parseRetryAfter("-1", now)).toBeUndefined();
  });

  it("retries a network failure and reports it through onRetry", async () => {
    let n = 0;
    const reg = await stub((req, res) => {
      if (++n === 1) {
        req.socket.destroy();
        return;
      }
      res.end(blob);
    });
    const r = createRegistryResolver(fast);
    const f = await r.fetcher(`${reg.host}/r`);
    const retries: unknown[] = [];
    expect((await read(await f.fetch(blobDesc, { onRetry: (i) => retries.push(i) }))).equals(blob)).toBe(true);
    expect(retries.length).toBe(1);
    await r.close();
  });

  it("holds a host's slot until the body is consumed, and an abort frees a queued caller", async () => {
    const reg = await stub((req, res) => {
      if (req.url?.includes("/blobs/")) res.end(blob);
      else res.writeHead(200, { "content-type": MediaTypes.OciManifest, "docker-content-digest": manifestDigest, "content-length": manifest.byteLength }).end(req.method === "HEAD" ? undefined : manifest);
    });
    const r = createRegistryResolver({ ...fast, concurrencyPerHost: 1 });
    const f = await r.fetcher(`${reg.host}/r`);
    const held = await f.fetch(blobDesc); // not read yet: holds the only slot
    const ac = new AbortController();
    const queued = r.resolve(`${reg.host}/r:v1`, { signal: ac.signal });
    await new Promise((res) => setTimeout(res, 100));
    expect(reg.seen.length).toBe(1);
    ac.abort();
    await expect(queued).rejects.toMatchObject({ code: "Aborted" });
    expect((await read(held)).equals(blob)).toBe(true);
    expect((await r.resolve(`${reg.host}/r:v1`)).descriptor.digest).toBe(manifestDigest);
    await r.close();
  });

  it("does not retry a 400 and maps registry codes", async () => {
    const reg = await stub((_req, res) => {
      res.writeHead(400, { "content-type": "application/json" }).end(JSON.stringify({ errors: [{ code: "MANIFEST_INVALID", message: "bad" }] }));
    });
    const r = createRegistryResolver(fast);
    const err = await r.fetchManifest(`${reg.host}/r:v1`).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "Registry", details: { status: 400, registryCodes: ["MANIFEST_INVALID"] } });
    expect(reg.seen.length).toBe(1);
    await r.close();
  });
});

describe("resolve", () => {
  const serveManifest = (opts: { headDigest?: boolean; head405?: boolean; onlyBlobs?: boolean; contentType?: string } = {}) =>
    stub((req, res) => {
      const isManifestPath = req.url?.includes("/manifests/");
      if (opts.onlyBlobs && isManifestPath) return void res.writeHead(404).end();
      if (!isManifestPath && !opts.onlyBlobs) return void res.writeHead(404).end();
      if (req.method === "HEAD" && opts.head405) return void res.writeHead(405).end();
      const headers: Record<string, string | number> = { "content-type": opts.contentType ?? MediaTypes.OciManifest, "content-length": manifest.byteLength };
      if (opts.headDigest !== false) headers["docker-content-digest"] = manifestDigest;
      res.writeHead(200, headers).end(req.method === "HEAD" ? undefined : manifest);
    });

  it("trusts HEAD's Docker-Content-Digest for a tag", async () => {
    const reg = await serveManifest();
    const r = createRegistryResolver(fast);
    const d = (await r.resolve(`${reg.host}/r:v1`)).descriptor;
    expect(d).toEqual({ mediaType: MediaTypes.OciManifest, digest: manifestDigest, size: manifest.byteLength });
    expect(reg.seen.map((s) => s.method)).toEqual(["HEAD"]);
    const accept = (reg.seen[0]!.headers.accept ?? "").split(",").map((t) => t.trim());
    for (const t of [MediaTypes.OciIndex, MediaTypes.OciManifest, MediaTypes.DockerManifestList, MediaTypes.DockerManifest]) expect(accept).toContain(t);
    await r.close();
  });

  it("falls back to GET and hashes when HEAD lacks the digest or answers 405", async () => {
    for (const opts of [{ headDigest: false }, { head405: true }]) {
      const reg = await serveManifest(opts);
      const r = createRegistryResolver(fast);
      expect((await r.resolve(`${reg.host}/r:v1`)).descriptor.digest).toBe(manifestDigest);
      expect(reg.seen.map((s) => s.method)).toEqual(["HEAD", "GET"]);
      await r.close();
    }
  });

  it("takes the media type from the document when Content-Type is generic", async () => {
    const reg = await serveManifest({ headDigest: false, contentType: "application/json" });
    const r = createRegistryResolver(fast);
    expect((await r.resolve(`${reg.host}/r:v1`)).descriptor.mediaType).toBe(MediaTypes.OciManifest);
    await r.close();
  });

  it("looks under /blobs/ for a digest reference only after a 404", async () => {
    const reg = await serveManifest({ onlyBlobs: true });
    const r = createRegistryResolver(fast);
    expect((await r.resolve(`${reg.host}/r@${manifestDigest}`)).descriptor.digest).toBe(manifestDigest);
    expect(reg.seen.map((s) => s.url)).toEqual([`/v2/r/manifests/${manifestDigest}`, `/v2/r/blobs/${manifestDigest}`]);
    await r.close();
  });

  it("refuses a manifest over 4 MiB, by Content-Length and while reading", async () => {
    const big = Buffer.alloc(4 * 1024 * 1024 + 1, 0x20);
    const reg = await stub((req, res) => {
      const chunked = req.url?.includes("chunked");
      res.writeHead(200, chunked ? { "content-type": MediaTypes.OciManifest } : { "content-type": MediaTypes.OciManifest, "content-length": big.byteLength });
      if (req.method === "HEAD") return void res.end();
      if (chunked) {
        res.write(big.subarray(0, 1 << 20));
        res.end(big.subarray(1 << 20));
      } else res.end(big);
    });
    const r = createRegistryResolver(fast);
    await expect(r.resolve(`${reg.host}/r:plain`)).rejects.toMatchObject({ code: "InvalidManifest" });
    await expect(r.resolve(`${reg.host}/r:chunked`)).rejects.toMatchObject({ code: "InvalidManifest" });
    await expect(r.fetchManifest(`${reg.host}/r@${digestOf(big)}`)).rejects.toMatchObject({ code: "InvalidManifest" });
    await r.close();
  });

  it("deletes by tag the manifest the registry itself tags, whatever a resolve mirror says", async () => {
    const upstreamDigest = manifestDigest;
    const staleDigest = digestOf("an older manifest");
    const upstream = await stub((req, res) => {
      if (req.method === "HEAD") return void res.writeHead(200, { "docker-content-digest": upstreamDigest, "content-type": MediaTypes.OciManifest, "content-length": String(manifest.byteLength) }).end();
      res.writeHead(202).end();
    });
    const mirror = await stub((_req, res) => res.writeHead(200, { "docker-content-digest": staleDigest, "content-type": MediaTypes.OciManifest, "content-length": "10" }).end());
    const r = createRegistryResolver({ ...fast, mirrors: { [upstream.host]: [{ host: mirror.host, capabilities: ["resolve"] }] } });
    try {
      expect(await r.deleteManifest(`${upstream.host}/r:v1`)).toBe(upstreamDigest);
      expect(upstream.seen.filter((s) => s.method === "DELETE").map((s) => s.url)).toEqual([`/v2/r/manifests/${upstreamDigest}`]);
      expect(mirror.seen).toEqual([]);
    } finally {
      await r.close();
    }
  });

  it("tries mirrors in order and reports the error that got furthest", async () => {
    const mirror = await stub((_req, res) => res.writeHead(404).end());
    const good = await serveManifest();
    const r = createRegistryResolver({
      ...fast,
      retry: { maxAttempts: 1 },
      mirrors: { "upstream.invalid:1": [{ host: mirror.host, capabilities: ["pull", "resolve"] }, { host: "127.0.0.1:1", capabilities: ["resolve"] }] },
      insecure: ["upstream.invalid:1"],
    });
    // mirror: 404; second mirror: connection refused; upstream: DNS failure. The 404 got furthest.
    await expect(r.resolve("upstream.invalid:1/r:v1")).rejects.toMatchObject({ code: "NotFound" });
    const r2 = createRegistryResolver({ ...fast, mirrors: { "upstream.invalid:1": [{ host: good.host, capabilities: ["resolve"] }] } });
    expect((await r2.resolve("upstream.invalid:1/r:v1")).descriptor.digest).toBe(manifestDigest);
    await r.close();
    await r2.close();
  });
});

describe("listing", () => {
  it("pages tags through Link headers (n=2 over 5 tags) and never leaves the origin", async () => {
    const all = ["a", "b", "c", "d", "e"];
    let evil: StubServer | undefined;
    const reg = await stub((req, res) => {
      const u = new URL(req.url ?? "/", "http://x");
      const n = Number(u.searchParams.get("n") ?? 100);
      const last = u.searchParams.get("last");
      const start = last ? all.indexOf(last) + 1 : 0;
      const page = all.slice(start, start + n);
      const headers: Record<string, string> = { "content-type": "application/json" };
      if (start + n < all.length) headers.link = `</v2/${u.pathname.split("/")[2]}/tags/list?n=${n}&last=${page.at(-1)}>; rel="next"`;
      if (u.pathname.startsWith("/v2/evil/")) headers.link = `<${evil!.origin}/v2/evil/tags/list?n=2&last=b>; rel="next"`;
      res.writeHead(200, headers).end(JSON.stringify({ name: "r", tags: page }));
    });
    evil = await stub((_req, res) => res.end(JSON.stringify({ tags: ["stolen"] })));
    const r = createRegistryResolver(fast);
    const got: string[] = [];
    for await (const t of r.tags(`${reg.host}/r`, { n: 2 })) got.push(t);
    expect(got).toEqual(all);
    expect(reg.seen.map((s) => s.url)).toEqual(["/v2/r/tags/list?n=2", "/v2/r/tags/list?n=2&last=b", "/v2/r/tags/list?n=2&last=d"]);
    const limited: string[] = [];
    for await (const t of r.tags(`${reg.host}/r`, { n: 2, limit: 3 })) limited.push(t);
    expect(limited).toEqual(["a", "b", "c"]);
    const fromEvil: string[] = [];
    for await (const t of r.tags(`${reg.host}/evil`, { n: 2 })) fromEvil.push(t);
    expect(fromEvil).toEqual(["a", "b"]);
    expect(evil.seen.length).toBe(0);
    await r.close();
  });

  it("stops at a Link back to a page already read, and at an empty page that still says next", async () => {
    const reg = await stub((req, res) => {
      const u = new URL(req.url ?? "/", "http://x");
      const repo = u.pathname.split("/")[2];
      const tags = repo === "loop" ? ["a"] : [];
      res.writeHead(200, { "content-type": "application/json", link: `</v2/${repo}/tags/list?n=1&p=${repo === "loop" ? 1 : reg.seen.length}>; rel="next"` });
      res.end(JSON.stringify({ tags }));
    });
    const r = createRegistryResolver(fast);
    const looped: string[] = [];
    for await (const t of r.tags(`${reg.host}/loop`)) looped.push(t);
    expect(looped).toEqual(["a", "a"]); // the first page, then the one it links to, once
    expect(reg.seen.length).toBe(2);
    const empty: string[] = [];
    for await (const t of r.tags(`${reg.host}/empty`)) empty.push(t);
    expect(empty).toEqual([]);
    expect(reg.seen.length).toBe(3);
    await r.close();
  });

  it("leaves out listed tags that are not tags (they would address something else in a URL)", async () => {
    const reg = await stub((_req, res) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ tags: ["v1", "../../victim/manifests/latest", "v2?x=1", ".hidden", "x".repeat(129), "ok_2.0-rc"] })));
    const r = createRegistryResolver(fast);
    const got: string[] = [];
    for await (const t of r.tags(`${reg.host}/r`)) got.push(t);
    expect(got).toEqual(["v1", "ok_2.0-rc"]);
    await r.close();
  });

  it("refuses a referrers answer that is JSON but not an object (InvalidManifest)", async () => {
    const reg = await stub((_req, res) => res.writeHead(200, { "content-type": MediaTypes.OciIndex }).end("null"));
    const r = createRegistryResolver(fast);
    await expect(r.referrers(`${reg.host}/r`, manifestDigest)).rejects.toMatchObject({ code: "InvalidManifest" });
    await r.close();
  });

  it("uses the referrers API when the registry has it", async () => {
    const ref: Descriptor = { mediaType: MediaTypes.OciManifest, digest: digestOf("x"), size: 1, artifactType: "a/b" };
    const reg = await stub((req, res) => {
      if (req.url?.startsWith(`/v2/r/referrers/${manifestDigest}`)) {
        res.writeHead(200, { "content-type": MediaTypes.OciIndex }).end(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.OciIndex, manifests: [ref, { ...ref, artifactType: "c/d" }] }));
      } else res.writeHead(404).end();
    });
    const r = createRegistryResolver(fast);
    expect(await r.referrers(`${reg.host}/r`, manifestDigest, { artifactType: "a/b" })).toEqual([ref]);
    expect(reg.seen[0]!.url).toBe(`/v2/r/referrers/${manifestDigest}?artifactType=a%2Fb`);
    await r.close();
  });
});

describe("ranged reads", () => {
  it("never reads the body of a 416 (distribution sends the whole size and closes)", async () => {
    const reg = await stub((_req, res) => {
      // Declares 64 MiB and sends nothing: reading it would hang until the socket dies.
      res.writeHead(416, { "content-length": String(64 << 20), "content-range": `bytes */${blob.byteLength}` });
      res.flushHeaders();
    });
    const r = createRegistryResolver({ ...fast, stallTimeoutMs: 60_000 });
    const f = await r.fetcher(`${reg.host}/r`);
    const ra = await f.readerAt({ ...blobDesc, size: blobDesc.size + 100 });
    await expect(ra.read(blobDesc.size + 10, 10)).rejects.toMatchObject({ code: "RangeNotSatisfiable" });
    expect(reg.seen[0]!.headers.range).toBe(`bytes=${blobDesc.size + 10}-${blobDesc.size + 19}`);
    await r.close();
  });

  it("sends closed ranges and checks where Content-Range starts", async () => {
    const reg = await stub((req, res) => {
      const m = /bytes=(\d+)-(\d+)/.exec(req.headers.range ?? "");
      const start = Number(m?.[1] ?? 0);
      // Misbehave for offset 100: answer from 150 instead.
      const s = start === 100 ? 150 : start;
      const end = start === 100 ? 169 : Number(m?.[2] ?? blob.byteLength - 1);
      res.writeHead(206, { "content-range": `bytes ${s}-${end}/${blob.byteLength}`, "content-length": end - s + 1 }).end(blob.subarray(s, end + 1));
    });
    const r = createRegistryResolver(fast);
    const f = await r.fetcher(`${reg.host}/r`);
    const ra = await f.readerAt(blobDesc);
    expect(Buffer.from(await ra.read(10, 20)).equals(blob.subarray(10, 30))).toBe(true);
    expect(reg.seen[0]!.headers.range).toBe("bytes=10-29");
    await expect(ra.read(100, 20)).rejects.toMatchObject({ code: "Registry" });
    await r.close();
  });

  it("reconnects a stalled body at the offset reached", async () => {
    let n = 0;
    const reg = await stub((req, res) => {
      n++;
      const m = /bytes=(\d+)-/.exec(req.headers.range ?? "");
      const start = Number(m?.[1] ?? 0);
      const body = blob.subarray(start);
      if (n === 1) {
        res.writeHead(200, { "content-length": blob.byteLength });
        res.write(blob.subarray(0, 1000)); // then silence
        return;
      }
      res.writeHead(206, { "content-range": `bytes ${start}-${blob.byteLength - 1}/${blob.byteLength}`, "content-length": body.byteLength }).end(body);
    });
    const r = createRegistryResolver({ ...fast, stallTimeoutMs: 200 });
    const f = await r.fetcher(`${reg.host}/r`);
    const reconnects: number[] = [];
    expect((await read(await f.fetch(blobDesc, { onReconnect: (o) => reconnects.push(o) }))).equals(blob)).toBe(true);
    expect(reconnects).toEqual([1000]);
    expect(reg.seen[1]!.headers.range).toBe(`bytes=1000-${blob.byteLength - 1}`);
    await r.close();
  });

  it("rejects a body whose Content-Length differs from the descriptor", async () => {
    const reg = await stub((_req, res) => res.writeHead(200, { "content-length": blob.byteLength - 1 }).end(blob.subarray(1)));
    const r = createRegistryResolver(fast);
    const f = await r.fetcher(`${reg.host}/r`);
    await expect(read(await f.fetch(blobDesc))).rejects.toMatchObject({ code: "SizeMismatch" });
    await r.close();
  });

  it("fetches from a pull mirror first and falls back to the registry", async () => {
    const mirror = await stub((req, res) => (req.url?.includes(blobDesc.digest) ? res.writeHead(404).end() : res.end(blob)));
    const reg = await stub((_req, res) => res.end(blob));
    const r = createRegistryResolver({ ...fast, mirrors: { [reg.host]: [{ host: mirror.host, capabilities: ["pull"] }] } });
    const f = await r.fetcher(`${reg.host}/r`);
    expect((await read(await f.fetch(blobDesc))).equals(blob)).toBe(true);
    expect(mirror.seen.map((s) => s.url)).toEqual([`/v2/r/blobs/${blobDesc.digest}`]);
    expect(reg.seen.length).toBe(1);
    await r.close();
  });

  it("reads a foreign layer from its urls first, without credentials", async () => {
    const cdn = await stub((_req, res) => res.end(blob));
    const reg = await stub((_req, res) => res.writeHead(404).end());
    const r = createRegistryResolver({ authorizer: staticAuth(), ...fast });
    const f = await r.fetcher(`${reg.host}/r`);
    const d = { ...blobDesc, mediaType: MediaTypes.OciLayerNondistributableGzip, urls: [`${cdn.origin}/layer.tgz`] };
    const got = await read(await f.fetch(d));
    expect(createHash("sha256").update(got).digest("hex")).toBe(blobDesc.digest.slice(7));
    expect(cdn.seen[0]!.headers.authorization).toBeUndefined();
    expect(reg.seen.length).toBe(0);
    await r.close();
  });
});

describe("https is never downgraded", () => {
  const haveOpenssl = spawnSync("openssl", ["version"]).status === 0;
  it.skipIf(!haveOpenssl && process.env.CI !== "true")("refuses an https→http redirect and an http upload Location", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ferry-tls-"));
    const gen = spawnSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(dir, "k"), "-out", join(dir, "c"), "-subj", "/CN=127.0.0.1", "-days", "1"]);
    expect(gen.status).toBe(0);
    const plain = await stub((_req, res) => res.end(blob));
    const tls = createHttpsServer({ key: readFileSync(join(dir, "k")), cert: readFileSync(join(dir, "c")) }, (req, res) => {
      if (req.method === "HEAD") return void res.writeHead(404).end();
      if (req.method === "POST") return void res.writeHead(202, { location: `${plain.origin}/upload?_state=1` }).end(); // a mount's 202 too
      res.writeHead(302, { location: `${plain.origin}/blob` }).end();
    });
    await new Promise<void>((r) => tls.listen(0, "127.0.0.1", r));
    const port = (tls.address() as AddressInfo).port;
    const agent = new Agent({ connect: { rejectUnauthorized: false } });
    const r = createRegistryResolver({
      dispatcher: agent,
      retry: { maxAttempts: 1 },
      mirrors: { "upstream.invalid": [{ host: `https://127.0.0.1:${port}`, capabilities: ["pull", "resolve", "push"] }] },
    });
    try {
      const f = await r.fetcher("upstream.invalid/r");
      await expect(f.fetch(blobDesc)).rejects.toMatchObject({ code: "Network", message: expect.stringMatching(/refusing redirect from https/) });
      const p = await r.pusher("upstream.invalid/r");
      await expect(p.push(blobDesc, { open: () => Readable.from([blob]) })).rejects.toMatchObject({ message: expect.stringMatching(/downgrades https/) });
      await expect(p.push(blobDesc, { open: () => Readable.from([blob]) }, { mountFrom: "other/repo" })).rejects.toMatchObject({ message: expect.stringMatching(/downgrades https/) });
      expect(plain.seen.length).toBe(0);
    } finally {
      await r.close();
      await agent.close();
      tls.closeAllConnections();
      await new Promise((res) => tls.close(res));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
