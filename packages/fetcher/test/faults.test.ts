/**
 * Faults injected by the testkit proxy in front of a real registry: ferry's embedded registry and
 * docker-registry (distribution 2.8), the same assertions for both (servers.ts).
 */
import { createReadStream } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { digestHex, digestStream, isNotFound, type Descriptor, type RetryInfo } from "@ferry/core";
import { createMemoryStore } from "@ferry/store-memory";
import { buildImage, makeImage, startFaultProxy, type BuiltLayout, type FaultProxy, type MadeImage } from "@ferry/testkit";
import { createRegistryResolver, fetchToStore, type RegistryResolver, type RequestAuthorizer } from "../src/index.ts";
import { describeEachServer } from "./servers.ts";

const blobPath = (dir: string, d: Descriptor) => join(dir, "blobs", "sha256", digestHex(d.digest));
const fileSource = (dir: string, d: Descriptor) => ({ open: (offset = 0) => createReadStream(blobPath(dir, d), { start: offset }) });
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function bytesOf(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/**
 * Every fault twice: blob bodies read through undici (the default below 8 MiB, this suite's
 * blobs) and read straight from the socket into lent buffers (`socketReadMinBytes: 0`).
 */
// Every fault on each way a blob body can be read: undici's, ferry's keep-alive connections
// (the default below the socket-read size) and a socket of its own with lent buffers.
const READ_PATHS = [
  { label: "undici bodies", socketReadMinBytes: Number.POSITIVE_INFINITY, keepAliveReads: false },
  { label: "keep-alive reads", socketReadMinBytes: undefined, keepAliveReads: undefined },
  { label: "socket reads", socketReadMinBytes: 0, keepAliveReads: undefined },
];

for (const reads of READ_PATHS) {
  describeEachServer(
    `registry transport under injected faults (${reads.label})`,
    (ctx) => {
      let proxy: FaultProxy;
      let resolver: RegistryResolver;
      let image: MadeImage;
      let layout: BuiltLayout;
      let work: string;
      let layer: Descriptor;
      let layerBytes: Buffer;

      beforeAll(async () => {
        work = await mkdtemp(join(tmpdir(), "ferry-faults-"));
        image = await makeImage(ctx.server.host, "faulty/img:v1", { layers: 1, layerSize: 1024 * 1024, layoutDir: join(work, "img") });
        layer = image.layers[0]!;
        layerBytes = await readFile(blobPath(image.dir, layer));
        layout = await buildImage({ dir: join(work, "up"), layers: 1, layerSize: 2 * 1024 * 1024, name: "up" });
        proxy = await startFaultProxy({ target: ctx.server.url });
        resolver = createRegistryResolver({ retry: { minDelayMs: 5, maxDelayMs: 20, maxRetryAfterMs: 5_000 }, socketReadMinBytes: reads.socketReadMinBytes, keepAliveReads: reads.keepAliveReads });
      }, 60_000);
      afterEach(() => {
        proxy.setRules([]);
        proxy.requests.length = 0;
      });
      afterAll(async () => {
        await resolver?.close();
        await proxy?.stop();
        if (work) await rm(work, { recursive: true, force: true });
      });

      const name = () => `${proxy.host}/faulty/img`;

      it("reconnects after a dropped connection mid-blob and still verifies the blob", async () => {
        proxy.setRules([{ method: "GET", path: /\/blobs\//, dropAfterBytes: 200_000, count: 2 }]);
        const f = await resolver.fetcher(name());
        const reconnects: number[] = [];
        const got = await digestStream(await f.fetch(layer, { onReconnect: (o) => reconnects.push(o) }));
        expect(got).toEqual({ digest: layer.digest, size: layer.size });
        expect(reconnects.length).toBe(2);
        expect(reconnects[0]).toBeGreaterThan(0);
        expect(reconnects[1]).toBeGreaterThan(reconnects[0]!);
        expect(proxy.requests.filter((r) => r.path.includes("/blobs/")).length).toBe(3);
      });

      it("reconnects when the connection dropped before anybody read the body", async () => {
        proxy.setRules([{ method: "GET", path: /\/blobs\//, dropAfterBytes: 1000, count: 1 }]);
        const f = await resolver.fetcher(name());
        const stream = await f.fetch(layer); // its first answer is open already
        await wait(200); // …and fails while nothing listens to it
        expect(await digestStream(stream)).toEqual({ digest: layer.digest, size: layer.size });
        expect(proxy.requests.filter((r) => r.path.includes("/blobs/")).length).toBe(2);
      });

      it("resumes after a truncated body (clean EOF before Content-Length)", async () => {
        proxy.setRules([{ method: "GET", path: /\/blobs\//, truncateBody: 300_000, count: 1 }]);
        const f = await resolver.fetcher(name());
        const reconnects: number[] = [];
        const got = await bytesOf(await f.fetch(layer, { onReconnect: (o) => reconnects.push(o) }));
        expect(got.equals(layerBytes)).toBe(true);
        expect(reconnects).toEqual([300_000]);
      });

      it("gives up after repeated reopens without progress", async () => {
        proxy.setRules([{ method: "GET", path: /\/blobs\//, dropAfterBytes: 0 }]);
        const f = await resolver.fetcher(name());
        await expect(digestStream(await f.fetch(layer).catch((e) => { throw e; }))).rejects.toMatchObject({ code: "Network" });
      });

      it("copes with 200 answers to ranged GETs: fetch flags rangeIgnored, reads discard, ingests restart", async () => {
        proxy.setRules([{ method: "GET", path: /\/blobs\//, ignoreRange: true }]);
        const f = await resolver.fetcher(name());
        const s = await f.fetch(layer, { offset: 5000 });
        expect(s.rangeIgnored).toBe(true);
        expect((await bytesOf(s)).equals(layerBytes)).toBe(true);

        const ra = await f.readerAt(layer);
        expect(Buffer.from(await ra.read(4096, 1000)).equals(layerBytes.subarray(4096, 5096))).toBe(true);
        expect(ra.rangeIgnored).toBe(true);

        const store = createMemoryStore();
        const w = await store.writer({ ref: `layer-${layer.digest}`, total: layer.size, expected: layer.digest });
        await w.write(layerBytes.subarray(0, 1234));
        await w.close();
        expect(await fetchToStore(f, layer, store)).toBe("written");
        expect((await store.info(layer.digest)).size).toBe(layer.size);

        // Parallel ranges drop to one serial stream.
        const store2 = createMemoryStore();
        await fetchToStore(f, layer, store2, { parallelRangeThreshold: 0, rangeChunkSize: 128 * 1024 });
        expect(await digestStream((await store2.readerAt(layer)).createReadStream())).toEqual({ digest: layer.digest, size: layer.size });
      });

      it("waits out a 429 with Retry-After, and the backoff holds back every request to the host", async () => {
        proxy.setRules([{ method: "GET", path: /\/blobs\//, status: 429, retryAfter: 2, body: "json", count: 1 }]);
        const f = await resolver.fetcher(name());
        const retries: RetryInfo[] = [];
        let seenAtRetry = -1;
        const first = f.fetch(layer, {
          onRetry: (i) => {
            retries.push(i);
            seenAtRetry = proxy.requests.length;
          },
        });
        while (seenAtRetry < 0) await wait(10);
        // Another request to the same host, started during the wait, must not go out yet.
        const second = resolver.resolve(image.reference);
        await wait(300);
        expect(proxy.requests.length).toBe(seenAtRetry);
        expect((await second).descriptor.digest).toBe(image.digest);
        expect(await digestStream(await first)).toEqual({ digest: layer.digest, size: layer.size });
        expect(retries).toEqual([{ attempt: 1, delayMs: 2000, reason: "HTTP 429", status: 429 }]);
      });

      it("fails with TooManyRequests carrying the wait when Retry-After exceeds the limit", async () => {
        proxy.setRules([{ path: /\/manifests\//, status: 429, retryAfter: 3600, body: "json" }]);
        const err = await resolver.resolve(`${name()}:v1`).catch((e: unknown) => e);
        expect(err).toMatchObject({ code: "TooManyRequests", details: { retryAfterMs: 3_600_000, status: 429 } });
      });

      it("rides out a burst of 503s", async () => {
        proxy.setRules([{ path: /\/manifests\//, status: 503, count: 3 }]);
        const seen: number[] = [];
        const got = await resolver.resolve(`${name()}:v1`, { onRetry: (info) => seen.push(info.status ?? 0) });
        expect(got.descriptor.digest).toBe(image.digest);
        expect(proxy.requests.filter((r) => r.status === 503).length).toBe(3);
        // resolve reports each wait through the transfer hooks (the status stream shows them as `retrying`).
        expect(seen).toEqual([503, 503, 503]);
        proxy.setRules([{ path: /\/manifests\//, status: 503 }]);
        await expect(resolver.resolve(`${name()}:v1`)).rejects.toMatchObject({ code: "Unavailable", details: { status: 503 } });
      });

      it("detects a corrupted byte: DigestMismatch, nothing committed, and a clean retry succeeds", async () => {
        proxy.setRules([{ method: "GET", path: /\/blobs\//, corruptByteAt: 777 }]);
        const f = await resolver.fetcher(name());
        await expect(digestStream(await f.fetch(layer))).rejects.toMatchObject({ code: "DigestMismatch" });
        const store = createMemoryStore();
        await expect(fetchToStore(f, layer, store)).rejects.toMatchObject({ code: "DigestMismatch" });
        await expect(store.info(layer.digest)).rejects.toSatisfy(isNotFound);
        expect(await store.listStatuses()).toEqual([]);
        proxy.setRules([]);
        expect(await fetchToStore(f, layer, store)).toBe("written");
      });

      it("re-reads a manifest whose body was cut short", async () => {
        proxy.setRules([{ method: "GET", path: /\/manifests\/sha256:/, truncateBody: 100, count: 1 }]);
        expect((await resolver.fetchManifest(`${name()}@${image.digest}`)).descriptor.digest).toBe(image.digest);
        expect(proxy.requests.filter((r) => r.path.includes("/manifests/")).length).toBe(2);
      });

      it("a digest reference whose bytes hash differently is refused", async () => {
        proxy.setRules([{ method: "GET", path: /\/manifests\/sha256:/, corruptByteAt: 10 }]);
        await expect(resolver.resolve(`${name()}@${image.digest}`)).rejects.toMatchObject({ code: "DigestMismatch" });
      });

      it("aborting mid-fetch leaves the ingest resumable", async () => {
        proxy.setRules([{ method: "GET", path: /\/blobs\//, rateBytesPerSec: 2 * 1024 * 1024 }]);
        const f = await resolver.fetcher(name());
        const store = createMemoryStore();
        const ac = new AbortController();
        const run = fetchToStore(f, layer, store, {
          signal: ac.signal,
          onProgress: (o) => {
            if (o > 100_000) ac.abort();
          },
        });
        await expect(run).rejects.toMatchObject({ code: "Aborted" });
        const st = await store.status(`layer-${layer.digest}`);
        expect(st.offset).toBeGreaterThan(100_000);
        proxy.setRules([]);
        proxy.requests.length = 0;
        expect(await fetchToStore(f, layer, store)).toBe("written");
        expect(proxy.requests.find((r) => r.path.includes("/blobs/"))?.bytes).toBe(layer.size - st.offset);
      });

      it("restarts a monolithic upload in a new session after a failed PUT", async () => {
        proxy.setRules([{ method: "PUT", path: /\/blobs\/uploads\//, status: 503, count: 1 }]);
        const p = await resolver.pusher(`${proxy.host}/up/mono`);
        const l = layout.layers[0]!;
        const retries: RetryInfo[] = [];
        expect(await p.push(l, fileSource(layout.dir, l), { onRetry: (i) => retries.push(i) })).toBe("pushed");
        expect(retries.length).toBe(1);
        expect(proxy.requests.filter((r) => r.method === "POST").length).toBe(2);
        expect(await p.exists(l)).toBe(true);
      });

      it("resumes a chunked upload from the session status after a 416", async () => {
        const chunked = createRegistryResolver({ uploadChunkSize: 512 * 1024, minUploadChunkSize: 512 * 1024, retry: { minDelayMs: 5 } });
        try {
          const p = await chunked.pusher(`${proxy.host}/up/chunked`);
          const l = layout.layers[0]!;
          const retries: RetryInfo[] = [];
          const src = fileSource(layout.dir, l);
          const opened: number[] = [];
          let armed = false;
          const push = p.push(l, { open: (o = 0) => (opened.push(o), src.open(o)) }, {
            onRetry: (i) => retries.push(i),
            onProgress: (sent) => {
              // Once the first chunk is on its way, the next PATCH is refused (once): the session
              // status then says where to resume.
              if (!armed && sent >= 512 * 1024) {
                armed = true;
                proxy.setRules([{ method: "PATCH", status: 416, count: 1 }]);
              }
            },
          });
          expect(await push).toBe("pushed");
          expect(retries.length).toBe(1);
          expect(retries[0]!.reason).toMatch(/resumed at byte 524288/);
          expect(opened).toEqual([0, 512 * 1024]);
          expect(proxy.requests.some((r) => r.method === "GET" && r.path.includes("/blobs/uploads/"))).toBe(true);
          expect(await p.exists(l)).toBe(true);
          const f = await chunked.fetcher(`${proxy.host}/up/chunked`);
          expect(await digestStream(await f.fetch(l))).toEqual({ digest: l.digest, size: l.size });
        } finally {
          await chunked.close();
        }
      });

      it("re-authorizes and restarts an upload whose final PUT got a 401 (token expired)", async () => {
        let token = 1;
        const seen: string[] = [];
        const authorizer: RequestAuthorizer = {
          async authorize() {
            return `Bearer t${token}`;
          },
          async onUnauthorized(_url, _scopes, challenges) {
            seen.push(...challenges);
            token++;
            return true;
          },
        };
        const r = createRegistryResolver({ authorizer, retry: { minDelayMs: 5 } });
        try {
          proxy.setRules([{ method: "PUT", path: /\/blobs\/uploads\//, status: 401, count: 1, headers: { "WWW-Authenticate": 'Bearer realm="x"' } }]);
          const p = await r.pusher(`${proxy.host}/up/auth`);
          const l = layout.layers[0]!;
          expect(await p.push(l, fileSource(layout.dir, l))).toBe("pushed");
          expect(seen).toEqual(['Bearer realm="x"']);
          expect(token).toBe(2);
          expect(proxy.requests.filter((q) => q.method === "POST").length).toBe(2); // a fresh session
        } finally {
          await r.close();
        }
      });

      it("resumes a chunked upload whose PATCH met an expired token", async () => {
        let token = 1;
        const authorizer: RequestAuthorizer = {
          async authorize() {
            return `Bearer t${token}`;
          },
          async onUnauthorized() {
            token++;
            return true;
          },
        };
        const r = createRegistryResolver({ authorizer, uploadChunkSize: 512 * 1024, minUploadChunkSize: 512 * 1024, retry: { minDelayMs: 5 } });
        try {
          let armed = false;
          const p = await r.pusher(`${proxy.host}/up/auth-chunked`);
          const l = layout.layers[0]!;
          const src = fileSource(layout.dir, l);
          const opened: number[] = [];
          const pushed = await p.push(l, { open: (o = 0) => (opened.push(o), src.open(o)) }, {
            onProgress: (sent) => {
              if (!armed && sent >= 1024 * 1024) {
                armed = true;
                proxy.setRules([{ method: "PATCH", status: 401, count: 1 }]);
              }
            },
          });
          expect(pushed).toBe("pushed");
          expect(token).toBe(2);
          expect(opened).toEqual([0, 1024 * 1024]);
          expect(proxy.requests.filter((q) => q.method === "POST").length).toBe(1); // same session
          const f = await r.fetcher(`${proxy.host}/up/auth-chunked`);
          expect(await digestStream(await f.fetch(l))).toEqual({ digest: l.digest, size: l.size });
        } finally {
          await r.close();
        }
      });
    },
    { tools: ["skopeo"] },
  );
}
