/**
 * Which host serves which step (mirror capabilities), the caps on listings, and the retried
 * statuses that other tests do not reach (408).
 */
import { describe, expect, it, vi } from "vitest";
import { digestOf, MediaTypes, type Descriptor } from "@ferry/core";
import { Readable } from "node:stream";
import { createMemoryStore } from "@ferry/store-memory";
import { createRegistryResolver, fetchToStore } from "../src/index.ts";
import { rangeHandler, stubsPerTest } from "./stub-server.ts";

const stub = stubsPerTest();

const fast = { retry: { minDelayMs: 1, maxDelayMs: 5 } };
const blob = Buffer.from("mirrored blob ".repeat(100));
const blobDesc: Descriptor = { mediaType: MediaTypes.OciLayer, digest: digestOf(blob), size: blob.byteLength };
const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.OciManifest, config: blobDesc, layers: [] }));
const manifestDigest = digestOf(manifest);

/** A registry that serves the manifest and the blob, and accepts a monolithic upload. */
const fullRegistry = () =>
  stub(async (req, res) => {
    const url = req.url ?? "";
    if (url.includes("/manifests/")) {
      const headers = { "content-type": MediaTypes.OciManifest, "content-length": manifest.byteLength, "docker-content-digest": manifestDigest };
      return void res.writeHead(200, headers).end(req.method === "HEAD" ? undefined : manifest);
    }
    if (req.method === "HEAD" && url.includes("/blobs/")) return void res.writeHead(404).end();
    if (url.includes("/blobs/uploads/") && req.method === "POST") return void res.writeHead(202, { location: "/up/1" }).end();
    if (req.method === "PUT") {
      for await (const _ of req) void _;
      return void res.writeHead(201, { "docker-content-digest": blobDesc.digest }).end();
    }
    if (url.includes("/blobs/")) return void res.writeHead(200, { "content-length": blob.byteLength }).end(blob);
    res.writeHead(404).end();
  });

describe("mirror capabilities", () => {
  it("resolve, pull and push each use only the mirrors that have the capability, in order", async () => {
    const pullOnly = await fullRegistry();
    const resolveOnly = await fullRegistry();
    const pushOnly = await fullRegistry();
    const upstream = "upstream.invalid:1";
    const r = createRegistryResolver({
      ...fast,
      retry: { maxAttempts: 1 },
      insecure: [upstream],
      mirrors: {
        [upstream]: [
          { host: pullOnly.host, capabilities: ["pull"] },
          { host: pushOnly.host, capabilities: ["push"] },
          { host: resolveOnly.host, capabilities: ["resolve"] },
        ],
      },
    });
    try {
      expect((await r.resolve(`${upstream}/r:v1`)).descriptor.digest).toBe(manifestDigest);
      expect(resolveOnly.seen.map((s) => s.method)).toEqual(["HEAD"]);
      expect(pullOnly.seen).toEqual([]);
      expect(pushOnly.seen).toEqual([]);

      const f = await r.fetcher(`${upstream}/r`);
      const got: Buffer[] = [];
      for await (const c of await f.fetch(blobDesc)) got.push(c as Buffer);
      expect(Buffer.concat(got).equals(blob)).toBe(true);
      expect(pullOnly.seen.map((s) => s.url)).toEqual([`/v2/r/blobs/${blobDesc.digest}`]);
      expect(resolveOnly.seen).toHaveLength(1);
      expect(pushOnly.seen).toEqual([]);

      const p = await r.pusher(`${upstream}/r`);
      expect(await p.push(blobDesc, { open: () => Readable.from([blob]) })).toBe("pushed");
      expect(pushOnly.seen.map((s) => s.method)).toEqual(["HEAD", "POST", "PUT"]);
      expect(pullOnly.seen).toHaveLength(1);
      expect(resolveOnly.seen).toHaveLength(1);
    } finally {
      await r.close();
    }
  });

  it("without a capable mirror the registry itself is used", async () => {
    const reg = await fullRegistry();
    const mirror = await fullRegistry();
    const r = createRegistryResolver({ ...fast, mirrors: { [reg.host]: [{ host: mirror.host, capabilities: ["push"] }] } });
    try {
      expect((await r.resolve(`${reg.host}/r:v1`)).descriptor.digest).toBe(manifestDigest);
      expect(reg.seen).toHaveLength(1);
      expect(mirror.seen).toEqual([]);
    } finally {
      await r.close();
    }
  });
});

describe("caps on listings", () => {
  const max = 2048;
  const longList = Array.from({ length: 400 }, (_, i) => `tag-${i}`);

  it("a tag or catalog page over maxManifestBytes is refused with InvalidManifest", async () => {
    for (const chunked of [false, true]) {
      const reg = await stub((req, res) => {
        const field = req.url?.startsWith("/v2/_catalog") ? "repositories" : "tags";
        const body = Buffer.from(JSON.stringify({ name: "r", [field]: longList }));
        expect(body.byteLength).toBeGreaterThan(max);
        res.writeHead(200, chunked ? { "content-type": "application/json" } : { "content-type": "application/json", "content-length": body.byteLength });
        if (chunked) {
          res.write(body.subarray(0, 100));
          res.end(body.subarray(100));
        } else res.end(body);
      });
      const r = createRegistryResolver({ ...fast, maxManifestBytes: max });
      try {
        const tags = async () => {
          for await (const _ of r.tags(`${reg.host}/r`)) void _;
        };
        const repos = async () => {
          for await (const _ of r.catalog(reg.host)) void _;
        };
        await expect(tags()).rejects.toMatchObject({ code: "InvalidManifest" });
        await expect(repos()).rejects.toMatchObject({ code: "InvalidManifest" });
      } finally {
        await r.close();
      }
    }
  });

  it("a referrers list over maxManifestBytes is refused, from the API and from the tag-schema fallback", async () => {
    const entry: Descriptor = { mediaType: MediaTypes.OciManifest, digest: digestOf("x"), size: 1, artifactType: "a/b" };
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.OciIndex, manifests: Array(40).fill(entry) }));
    expect(index.byteLength).toBeGreaterThan(max);
    for (const api of [true, false]) {
      const reg = await stub((req, res) => {
        const isApi = req.url?.includes("/referrers/");
        if (isApi !== api) return void res.writeHead(404).end();
        res.writeHead(200, { "content-type": MediaTypes.OciIndex }).end(req.method === "HEAD" ? undefined : index);
      });
      const r = createRegistryResolver({ ...fast, maxManifestBytes: max });
      try {
        await expect(r.referrers(`${reg.host}/r`, manifestDigest)).rejects.toMatchObject({ code: "InvalidManifest" });
        // Under the cap the same answer is accepted.
        const roomy = createRegistryResolver({ ...fast, maxManifestBytes: 64 * 1024 });
        try {
          expect(await roomy.referrers(`${reg.host}/r`, manifestDigest)).toHaveLength(40);
        } finally {
          await roomy.close();
        }
      } finally {
        await r.close();
      }
    }
  });
});

describe("retried statuses", () => {
  it("retries a 408 Request Timeout and reports it through onRetry", async () => {
    let n = 0;
    const reg = await stub((_req, res) => {
      if (++n === 1) return void res.writeHead(408).end();
      res.writeHead(200, { "content-length": blob.byteLength }).end(blob);
    });
    const r = createRegistryResolver(fast);
    try {
      const f = await r.fetcher(`${reg.host}/r`);
      const retries: Array<number | undefined> = [];
      const got: Buffer[] = [];
      for await (const c of await f.fetch(blobDesc, { onRetry: (i) => retries.push(i.status) })) got.push(c as Buffer);
      expect(Buffer.concat(got).equals(blob)).toBe(true);
      expect(retries).toEqual([408]);
      expect(reg.seen).toHaveLength(2);
    } finally {
      await r.close();
    }
  });

  it("Retry-After is bounded by the configured maxRetryAfterMs, not clamped", async () => {
    let n = 0;
    const reg = await stub((_req, res) => {
      if (++n % 2 === 1) return void res.writeHead(429, { "retry-after": "1" }).end();
      res.writeHead(200, { "content-length": blob.byteLength }).end(blob);
    });
    const strict = createRegistryResolver({ retry: { ...fast.retry, maxRetryAfterMs: 500 } });
    const patient = createRegistryResolver({ retry: { ...fast.retry, maxRetryAfterMs: 5000 } });
    try {
      const f1 = await strict.fetcher(`${reg.host}/r`);
      await expect(f1.fetch(blobDesc)).rejects.toMatchObject({ code: "TooManyRequests", details: { retryAfterMs: 1000, status: 429 } });
      expect(n).toBe(1);
      n = 0;
      const f2 = await patient.fetcher(`${reg.host}/r`);
      const waits: number[] = [];
      const got: Buffer[] = [];
      for await (const c of await f2.fetch(blobDesc, { onRetry: (i) => waits.push(i.delayMs) })) got.push(c as Buffer);
      expect(Buffer.concat(got).equals(blob)).toBe(true);
      // The server's full second, not the 5 ms backoff ceiling.
      expect(waits).toEqual([1000]);
    } finally {
      await strict.close();
      await patient.close();
    }
  });

  it("backs off exponentially up to maxDelayMs with full jitter, the exponent shared by every request to the host", async () => {
    let bOnce = false;
    const reg = await stub((req, res) => {
      if (req.url?.startsWith("/v2/b/") && bOnce) return void res.writeHead(200, { "content-length": blob.byteLength }).end(blob);
      if (req.url?.startsWith("/v2/b/")) bOnce = true;
      res.writeHead(500).end();
    });
    const r = createRegistryResolver({ retry: { minDelayMs: 8, maxDelayMs: 40, maxAttempts: 6 } });
    const random = vi.spyOn(Math, "random");
    try {
      // Full jitter draws from [0, cap]: pin the draw to its top to see the caps themselves.
      random.mockReturnValue(0.999999);
      const a = await r.fetcher(`${reg.host}/a`);
      const delays: number[] = [];
      await expect(a.fetch(blobDesc, { onRetry: (i) => delays.push(i.delayMs) })).rejects.toMatchObject({ code: "Unavailable" });
      expect(delays).toEqual([8, 16, 32, 40, 40]);
      // Another repository on the same host starts at the grown exponent, not at minDelayMs.
      const b = await r.fetcher(`${reg.host}/b`);
      const bDelays: number[] = [];
      for await (const _ of await b.fetch(blobDesc, { onRetry: (i) => bDelays.push(i.delayMs) })) void _;
      expect(bDelays).toEqual([40]);
      // And the draw really is jittered: the bottom of the range is 0.
      random.mockReturnValue(0);
      bOnce = false;
      const zero: number[] = [];
      for await (const _ of await b.fetch(blobDesc, { onRetry: (i) => zero.push(i.delayMs) })) void _;
      expect(zero).toEqual([0]);
    } finally {
      random.mockRestore();
      await r.close();
    }
  });
});

describe("resolve fallbacks", () => {
  it("a digest reference is looked up under /blobs/ only after a 404, never after a transient error", async () => {
    const reg = await stub((req, res) => {
      if (req.url?.includes("/manifests/")) return void res.writeHead(503).end();
      res.writeHead(200, { "content-type": MediaTypes.OciManifest, "content-length": manifest.byteLength }).end(manifest);
    });
    const r = createRegistryResolver({ ...fast, retry: { ...fast.retry, maxAttempts: 2 } });
    try {
      await expect(r.resolve(`${reg.host}/r@${manifestDigest}`)).rejects.toMatchObject({ code: "Unavailable" });
      expect(reg.seen.map((s) => s.url)).toEqual([`/v2/r/manifests/${manifestDigest}`, `/v2/r/manifests/${manifestDigest}`]);
    } finally {
      await r.close();
    }
  });

  it("a HEAD with a digest but no size is not trusted: the manifest is fetched and hashed", async () => {
    const reg = await stub((req, res) => {
      if (req.method === "HEAD") {
        // A digest without Content-Length (chunked): the size is unknown.
        res.writeHead(200, { "content-type": MediaTypes.OciManifest, "docker-content-digest": manifestDigest, "transfer-encoding": "chunked" });
        return void res.end();
      }
      res.writeHead(200, { "content-type": MediaTypes.OciManifest, "content-length": manifest.byteLength }).end(manifest);
    });
    const r = createRegistryResolver(fast);
    try {
      expect((await r.resolve(`${reg.host}/r:v1`)).descriptor).toEqual({ mediaType: MediaTypes.OciManifest, digest: manifestDigest, size: manifest.byteLength });
      expect(reg.seen.map((s) => s.method)).toEqual(["HEAD", "GET"]);
    } finally {
      await r.close();
    }
  });
});

describe("foreign layers", () => {
  it("falls back from dead or failing urls to the registry, with credentials only there", async () => {
    const cdn = await stub((_req, res) => res.writeHead(404).end());
    const reg = await stub((_req, res) => res.writeHead(200, { "content-length": blob.byteLength }).end(blob));
    const sent: string[] = [];
    const r = createRegistryResolver({
      ...fast,
      retry: { ...fast.retry, maxAttempts: 1 },
      authorizer: {
        async authorize(url) {
          sent.push(url.host);
          return "Bearer only-for-the-registry";
        },
        async onUnauthorized() {
          return false;
        },
      },
    });
    try {
      const f = await r.fetcher(`${reg.host}/r`);
      const d: Descriptor = {
        ...blobDesc,
        mediaType: MediaTypes.DockerLayerForeignGzip,
        urls: ["ftp://not-http.example/x", "http://127.0.0.1:1/refused.tgz", `${cdn.origin}/missing.tgz`],
      };
      const got: Buffer[] = [];
      for await (const c of await f.fetch(d)) got.push(c as Buffer);
      expect(Buffer.concat(got).equals(blob)).toBe(true);
      expect(cdn.seen.map((s) => s.url)).toEqual(["/missing.tgz"]);
      expect(cdn.seen[0]!.headers.authorization).toBeUndefined();
      expect(reg.seen.map((s) => s.url)).toEqual([`/v2/r/blobs/${blobDesc.digest}`]);
      expect(reg.seen[0]!.headers.authorization).toBe("Bearer only-for-the-registry");
      expect(sent).toEqual([reg.host]);
    } finally {
      await r.close();
    }
  });
});

describe("abort", () => {
  it("aborting a parallel-range fetch into a store leaves the ingest resumable at the bytes written in order", async () => {
    const big = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < big.length; i += 4) big.writeUInt32LE(i, i);
    const desc: Descriptor = { mediaType: MediaTypes.OciLayer, digest: digestOf(big), size: big.byteLength };
    const ranges: string[] = [];
    const serve = rangeHandler(big);
    const reg = await stub((req, res) => {
      if (req.headers.range) ranges.push(req.headers.range.slice("bytes=".length));
      serve(req, res);
    });
    const r = createRegistryResolver({ ...fast, parallelRangeThreshold: 0, rangeChunkSize: 64 * 1024, parallelRanges: 2 });
    try {
      const f = await r.fetcher(`${reg.host}/r`);
      const store = createMemoryStore();
      const ac = new AbortController();
      const run = fetchToStore(f, desc, store, { signal: ac.signal, onProgress: (o) => o >= 256 * 1024 && ac.abort() });
      await expect(run).rejects.toMatchObject({ code: "Aborted" });
      const st = await store.status(`layer-${desc.digest}`);
      expect(st.offset).toBeGreaterThanOrEqual(256 * 1024);
      expect(st.offset).toBeLessThan(big.byteLength);
      expect(st.offset % (64 * 1024)).toBe(0);
      ranges.length = 0;
      expect(await fetchToStore(f, desc, store)).toBe("written");
      // The resumed run asks only for what the ingest lacked.
      expect(Number(ranges.map((x) => x.split("-")[0]).sort((a, b) => Number(a) - Number(b))[0])).toBe(st.offset);
      const ra = await store.readerAt(desc);
      expect(Buffer.from(await ra.read(0, big.byteLength)).equals(big)).toBe(true);
      await ra.close();
    } finally {
      await r.close();
    }
  });
});

describe("stall detection", () => {
  it("is not a whole-transfer timeout: a slow but steady body outlasting stallTimeoutMs is not cut", async () => {
    const reg = await stub((_req, res) => {
      res.writeHead(200, { "content-length": blob.byteLength });
      // 56 pieces, one every 25 ms: about 1.4 s in all, never silent for long.
      const piece = Math.ceil(blob.byteLength / 56);
      let at = 0;
      const timer = setInterval(() => {
        res.write(blob.subarray(at, at + piece));
        at += piece;
        if (at >= blob.byteLength) {
          clearInterval(timer);
          res.end();
        }
      }, 25);
      res.on("close", () => clearInterval(timer));
    });
    const r = createRegistryResolver({ ...fast, stallTimeoutMs: 700 });
    try {
      const f = await r.fetcher(`${reg.host}/r`);
      const reconnects: number[] = [];
      const got: Buffer[] = [];
      for await (const c of await f.fetch(blobDesc, { onReconnect: (o) => reconnects.push(o) })) got.push(c as Buffer);
      expect(Buffer.concat(got).equals(blob)).toBe(true);
      expect(reconnects).toEqual([]);
      expect(reg.seen).toHaveLength(1);
    } finally {
      await r.close();
    }
  });
});

describe("read-seeker", () => {
  it("is lazy: no request until the first read, then a closed range from the offset asked", async () => {
    const reg = await stub(rangeHandler(blob));
    const r = createRegistryResolver(fast);
    try {
      const f = await r.fetcher(`${reg.host}/r`);
      const rs = await f.readSeeker(blobDesc);
      expect(rs.size).toBe(blobDesc.size);
      await new Promise((done) => setTimeout(done, 50));
      expect(reg.seen).toEqual([]);
      expect(Buffer.from(await rs.read(100, 10)).equals(blob.subarray(100, 110))).toBe(true);
      expect(reg.seen).toHaveLength(1);
      const range = /^bytes=(\d+)-(\d+)$/.exec(reg.seen[0]!.headers.range ?? "");
      expect(range && Number(range[1])).toBe(100);
      expect(range && Number(range[2])).toBeLessThanOrEqual(blobDesc.size - 1);
      await rs.close();
    } finally {
      await r.close();
    }
  });
});

describe("abort signals on every operation", () => {
  it("an aborted signal rejects every call with Aborted before anything is sent", async () => {
    const reg = await stub(rangeHandler(blob));
    const r = createRegistryResolver(fast);
    const signal = AbortSignal.abort();
    const drain = async (it: AsyncIterable<string>) => {
      for await (const _ of it) void _;
    };
    try {
      const f = await r.fetcher(`${reg.host}/r`);
      const p = await r.pusher(`${reg.host}/r`);
      const calls: Array<[string, () => Promise<unknown>]> = [
        ["resolve", () => r.resolve(`${reg.host}/r:v1`, { signal })],
        ["fetchManifest", () => r.fetchManifest(`${reg.host}/r:v1`, { signal })],
        ["tags", () => drain(r.tags(`${reg.host}/r`, { signal }))],
        ["catalog", () => drain(r.catalog(reg.host, { signal }))],
        ["referrers", () => r.referrers(`${reg.host}/r`, manifestDigest, { signal })],
        ["deleteManifest", () => r.deleteManifest(`${reg.host}/r@${manifestDigest}`, { signal })],
        ["fetch", () => f.fetch(blobDesc, { signal })],
        ["readSeeker.read", async () => (await f.readSeeker(blobDesc, { signal })).read(0, 10)],
        ["fetchToStore", () => fetchToStore(f, blobDesc, createMemoryStore(), { signal })],
        ["exists", () => p.exists(blobDesc, { signal })],
        ["push", () => p.push(blobDesc, { open: () => Readable.from([blob]) }, { signal })],
        ["tag", () => p.tag({ mediaType: MediaTypes.OciManifest, digest: manifestDigest, size: manifest.byteLength }, "t", { signal })],
      ];
      for (const [name, call] of calls) {
        await expect(call(), name).rejects.toMatchObject({ code: "Aborted" });
      }
      expect(reg.seen).toEqual([]);
    } finally {
      await r.close();
    }
  });

  it("aborting while paging tags stops at once", async () => {
    const ac = new AbortController();
    const reg = await stub((req, res) => {
      const u = new URL(req.url ?? "/", "http://x");
      const page = Number(u.searchParams.get("last") ?? 0) + 1;
      res.writeHead(200, { "content-type": "application/json", link: `</v2/r/tags/list?n=1&last=${page}>; rel="next"` }).end(JSON.stringify({ tags: [String(page)] }));
    });
    const r = createRegistryResolver(fast);
    try {
      const got: string[] = [];
      const run = (async () => {
        for await (const t of r.tags(`${reg.host}/r`, { n: 1, signal: ac.signal })) {
          got.push(t);
          if (got.length === 3) ac.abort();
        }
      })();
      await expect(run).rejects.toMatchObject({ code: "Aborted" });
      expect(got).toEqual(["1", "2", "3"]);
      expect(reg.seen).toHaveLength(3);
    } finally {
      await r.close();
    }
  });
});
