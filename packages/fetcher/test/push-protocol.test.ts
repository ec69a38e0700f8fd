/**
 * Push protocol steps a real distribution 2.8 never shows: a refused mount falling back to a plain
 * upload, `OCI-Chunk-Min-Length` raising the chunk size, and a registry whose
 * `Docker-Content-Digest` disagrees with what was pushed.
 */
import type { IncomingMessage } from "node:http";
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { digestOf, MediaTypes, type Descriptor } from "@ferry/core";
import { createRegistryResolver } from "../src/index.ts";
import { stubsPerTest } from "./stub-server.ts";

const stub = stubsPerTest();

const fast = { retry: { minDelayMs: 1, maxDelayMs: 5 } };

async function bodyOf(req: IncomingMessage): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of req) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

const source = (data: Uint8Array) => ({ open: (offset = 0) => Readable.from([Buffer.from(data.subarray(offset))]) });

/**
 * A minimal upload endpoint: HEAD says absent, POST opens `/upload/<n>`, PATCHes append, PUT
 * finishes (with the session's bytes plus its own body). `mountStatus` answers mount attempts.
 */
function uploadServer(opts: { mountStatus?: number; chunkMin?: number; answerDigest?: (stored: Buffer) => string; keepOfFirstPatch?: number; failFirstPatch?: boolean } = {}) {
  const stored: Buffer[] = [];
  const patchSizes: number[] = [];
  let finished: Buffer | undefined;
  let sessions = 0;
  const server = stub(async (req, res) => {
    const u = new URL(req.url ?? "/", "http://x");
    const storedBytes = () => stored.reduce((a, b) => a + b.byteLength, 0);
    if (req.method === "HEAD") return void res.writeHead(404).end();
    // Session status: what the registry really holds.
    if (req.method === "GET") return void res.writeHead(204, { location: u.pathname, range: `0-${storedBytes() - 1}` }).end();
    if (req.method === "POST" && u.searchParams.has("mount")) return void res.writeHead(opts.mountStatus ?? 404).end();
    if (req.method === "POST") {
      sessions++;
      const headers: Record<string, string> = { location: `/upload/${sessions}`, range: "0-0" };
      if (opts.chunkMin !== undefined) headers["oci-chunk-min-length"] = String(opts.chunkMin);
      return void res.writeHead(202, headers).end();
    }
    if (req.method === "PATCH" && opts.failFirstPatch && patchSizes.length === 0) {
      // Refuse at once, before the body has been sent: the client's source is still mid-read.
      patchSizes.push(-1);
      res.setHeader("connection", "close");
      return void res.writeHead(500).end();
    }
    const body = await bodyOf(req);
    if (req.method === "PATCH") {
      patchSizes.push(body.byteLength);
      // A registry that kept only part of the first chunk says so in its Range.
      const keep = patchSizes.length === 1 && opts.keepOfFirstPatch !== undefined ? opts.keepOfFirstPatch : body.byteLength;
      stored.push(body.subarray(0, keep));
      return void res.writeHead(202, { location: u.pathname, range: `0-${storedBytes() - 1}` }).end();
    }
    if (req.method === "PUT") {
      finished = Buffer.concat([...stored, body]);
      const digest = opts.answerDigest ? opts.answerDigest(finished) : u.searchParams.get("digest") ?? "";
      return void res.writeHead(201, { "docker-content-digest": digest }).end();
    }
    res.writeHead(400).end();
  });
  return { server, patchSizes, finished: () => finished };
}

describe("cross-repository mount", () => {
  it.each([401, 403, 404])("a mount answered %i falls back to a plain upload in a new session", async (status) => {
    const data = Buffer.from("mount me ".repeat(500));
    const desc: Descriptor = { mediaType: MediaTypes.OciLayer, digest: digestOf(data), size: data.byteLength };
    const up = uploadServer({ mountStatus: status });
    const reg = await up.server;
    const r = createRegistryResolver({ ...fast, credentials: {} });
    try {
      const p = await r.pusher(`${reg.host}/dst`);
      expect(await p.push(desc, source(data), { mountFrom: "src/repo" })).toBe("pushed");
      const steps = reg.seen.map((s) => `${s.method} ${s.url.split("?")[0]}${s.url.includes("mount=") ? "?mount" : ""}`);
      expect(steps).toEqual([
        `HEAD /v2/dst/blobs/${desc.digest}`,
        "POST /v2/dst/blobs/uploads/?mount",
        "POST /v2/dst/blobs/uploads/",
        "PUT /upload/1",
      ]);
      const mount = new URL(reg.seen[1]!.url, "http://x").searchParams;
      expect(mount.get("mount")).toBe(desc.digest);
      expect(mount.get("from")).toBe("src/repo");
      expect(up.finished()?.equals(data)).toBe(true);
    } finally {
      await r.close();
    }
  });
});

describe("cross-repository mount verification", () => {
  it("a 201 to a mount is verified with a HEAD; a blob still absent is uploaded", async () => {
    const data = Buffer.from("claimed but absent");
    const desc: Descriptor = { mediaType: MediaTypes.OciLayer, digest: digestOf(data), size: data.byteLength };
    const up = uploadServer({ mountStatus: 201 });
    const reg = await up.server;
    const r = createRegistryResolver(fast);
    try {
      const p = await r.pusher(`${reg.host}/dst`);
      expect(await p.push(desc, source(data), { mountFrom: "src" })).toBe("pushed");
      expect(reg.seen.map((s) => s.method)).toEqual(["HEAD", "POST", "HEAD", "POST", "PUT"]);
      expect(up.finished()?.equals(data)).toBe(true);
    } finally {
      await r.close();
    }
  });
});

describe("chunked uploads", () => {
  it("raises the chunk size to the registry's OCI-Chunk-Min-Length", async () => {
    const data = Buffer.alloc(2500, 7);
    const desc: Descriptor = { mediaType: MediaTypes.OciLayer, digest: digestOf(data), size: data.byteLength };
    const up = uploadServer({ chunkMin: 1000 });
    const reg = await up.server;
    // Asked for 100-byte chunks with a 10-byte floor: the server's 1000-byte minimum wins.
    const r = createRegistryResolver({ ...fast, uploadChunkSize: 100, minUploadChunkSize: 10 });
    try {
      const p = await r.pusher(`${reg.host}/r`);
      expect(await p.push(desc, source(data))).toBe("pushed");
      expect(up.patchSizes).toEqual([1000, 1000, 500]);
      expect(up.finished()?.equals(data)).toBe(true);
    } finally {
      await r.close();
    }
  });

  it("a 202 whose Range disagrees with what was sent makes the upload resume from the registry's offset", async () => {
    const data = Buffer.from(Array.from({ length: 3000 }, (_, i) => i % 251));
    const desc: Descriptor = { mediaType: MediaTypes.OciLayer, digest: digestOf(data), size: data.byteLength };
    const up = uploadServer({ keepOfFirstPatch: 600 });
    const reg = await up.server;
    const r = createRegistryResolver({ ...fast, uploadChunkSize: 1000, minUploadChunkSize: 1 });
    try {
      const p = await r.pusher(`${reg.host}/r`);
      const retries: string[] = [];
      expect(await p.push(desc, source(data), { onRetry: (i) => retries.push(i.reason) })).toBe("pushed");
      // 1000 sent, 600 kept: status asked, then 600-1599, 1600-2599, 2600-2999.
      expect(up.patchSizes).toEqual([1000, 1000, 1000, 400]);
      expect(reg.seen.map((x) => x.method)).toEqual(["HEAD", "POST", "PATCH", "GET", "PATCH", "PATCH", "PATCH", "PUT"]);
      expect(retries).toEqual(["chunk upload resumed at byte 600"]);
      expect(up.finished()?.equals(data)).toBe(true);
    } finally {
      await r.close();
    }
  });

  it("a PATCH refused while its source is still reading resumes cleanly (no stray stream error)", async () => {
    const data = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7) % 256));
    const desc: Descriptor = { mediaType: MediaTypes.OciLayer, digest: digestOf(data), size: data.byteLength };
    // A slow source: 100 bytes every 10 ms, so it is waiting for its next piece when the PATCH fails.
    const slow = {
      open(offset = 0) {
        let at = offset;
        return new Readable({
          read() {
            setTimeout(() => {
              if (at >= data.byteLength) return void this.push(null);
              this.push(data.subarray(at, at + 100));
              at += 100;
            }, 10);
          },
        });
      },
    };
    const up = uploadServer({ failFirstPatch: true });
    const reg = await up.server;
    const r = createRegistryResolver({ ...fast, uploadChunkSize: 1000, minUploadChunkSize: 1 });
    const stray: unknown[] = [];
    const onStray = (e: unknown) => void stray.push(e);
    process.on("uncaughtException", onStray);
    try {
      const p = await r.pusher(`${reg.host}/r`);
      expect(await p.push(desc, slow)).toBe("pushed");
      await new Promise((done) => setTimeout(done, 100));
      expect(stray).toEqual([]);
      expect(up.patchSizes).toEqual([-1, 1000, 1000, 1000]);
      expect(up.finished()?.equals(data)).toBe(true);
    } finally {
      process.off("uncaughtException", onStray);
      await r.close();
    }
  });

  it("gives up on a session that accepts chunks and then keeps losing them (no endless resume)", async () => {
    const data = Buffer.alloc(16, 7);
    const desc: Descriptor = { mediaType: MediaTypes.OciLayer, digest: digestOf(data), size: data.byteLength };
    let stored = 0;
    let patches = 0;
    const reg = await stub(async (req, res) => {
      if (req.method === "HEAD") return void res.writeHead(404).end();
      if (req.method === "POST") {
        stored = 0;
        return void res.writeHead(202, { location: "/v2/r/blobs/uploads/u" }).end();
      }
      if (req.method === "PATCH") {
        patches++;
        const body = await bodyOf(req);
        const from = Number(String(req.headers["content-range"]).split("-")[0]);
        if (from !== stored || stored >= 8) {
          stored = 1; // keeps one byte of what it had accepted
          return void res.writeHead(416, { range: "0-0" }).end();
        }
        stored = from + body.byteLength;
        return void res.writeHead(202, { range: `0-${stored - 1}`, location: "/v2/r/blobs/uploads/u" }).end();
      }
      if (req.method === "GET") return void res.writeHead(204, { range: `0-${stored - 1}` }).end();
      res.writeHead(201).end();
    });
    const r = createRegistryResolver({ ...fast, uploadChunkSize: 8, minUploadChunkSize: 1 });
    try {
      const p = await r.pusher(`${reg.host}/r`);
      await expect(p.push(desc, source(data))).rejects.toMatchObject({ code: "Network", message: expect.stringMatching(/makes no progress/) });
      // Each session: a chunk, then a few resumes that never pass it; a handful of sessions in all.
      expect(patches).toBeLessThan(100);
    } finally {
      await r.close();
    }
  });

  it("never sends chunks below minUploadChunkSize (default 5 MiB floor when unset)", async () => {
    const data = Buffer.alloc(300, 1);
    const desc: Descriptor = { mediaType: MediaTypes.OciLayer, digest: digestOf(data), size: data.byteLength };
    const up = uploadServer();
    const reg = await up.server;
    const r = createRegistryResolver({ ...fast, uploadChunkSize: 10, minUploadChunkSize: 128 });
    try {
      const p = await r.pusher(`${reg.host}/r`);
      expect(await p.push(desc, source(data))).toBe("pushed");
      expect(up.patchSizes).toEqual([128, 128, 44]);
    } finally {
      await r.close();
    }
    // The default floor: a 6 MiB blob asked in 1 MiB chunks goes as 5 MiB + 1 MiB.
    const big = Buffer.alloc(6 * 1024 * 1024, 2);
    const bigDesc: Descriptor = { mediaType: MediaTypes.OciLayer, digest: digestOf(big), size: big.byteLength };
    const up2 = uploadServer();
    const reg2 = await up2.server;
    const r2 = createRegistryResolver({ ...fast, uploadChunkSize: 1024 * 1024 });
    try {
      const p = await r2.pusher(`${reg2.host}/r`);
      expect(await p.push(bigDesc, source(big))).toBe("pushed");
      expect(up2.patchSizes).toEqual([5 * 1024 * 1024, 1024 * 1024]);
    } finally {
      await r2.close();
    }
  });
});

describe("Docker-Content-Digest checks", () => {
  it("a blob the registry stored under another digest fails with DigestMismatch", async () => {
    const data = Buffer.from("blob bytes");
    const desc: Descriptor = { mediaType: MediaTypes.OciLayer, digest: digestOf(data), size: data.byteLength };
    const up = uploadServer({ answerDigest: () => digestOf("something else") });
    const reg = await up.server;
    const r = createRegistryResolver({ ...fast, retry: { maxAttempts: 1 } });
    try {
      const p = await r.pusher(`${reg.host}/r`);
      await expect(p.push(desc, source(data))).rejects.toMatchObject({ code: "DigestMismatch" });
    } finally {
      await r.close();
    }
  });

  it("pushes a manifest by digest and by tag, and checks the digest the registry reports", async () => {
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.OciManifest, config: { mediaType: MediaTypes.OciEmpty, digest: digestOf("{}"), size: 2 }, layers: [] }));
    const desc: Descriptor = { mediaType: MediaTypes.OciManifest, digest: digestOf(manifest), size: manifest.byteLength };
    let lie = false;
    const puts: Array<{ url: string; type: string | undefined; body: Buffer }> = [];
    const reg = await stub(async (req, res) => {
      if (req.method === "HEAD") return void res.writeHead(404).end();
      if (req.method === "PUT") {
        const body = await bodyOf(req);
        puts.push({ url: req.url ?? "", type: req.headers["content-type"], body });
        return void res.writeHead(201, { "docker-content-digest": lie ? digestOf("other") : digestOf(body) }).end();
      }
      res.writeHead(400).end();
    });
    const r = createRegistryResolver(fast);
    try {
      const p = await r.pusher(`${reg.host}/r`);
      expect(await p.push(desc, { open: () => Readable.from([manifest]) }, { tag: "v1" })).toBe("pushed");
      expect(puts.map((x) => x.url)).toEqual([`/v2/r/manifests/${desc.digest}`, "/v2/r/manifests/v1"]);
      for (const put of puts) {
        expect(put.type).toBe(MediaTypes.OciManifest);
        expect(put.body.equals(manifest)).toBe(true);
      }
      lie = true;
      await expect(p.push(desc, { open: () => Readable.from([manifest]) })).rejects.toMatchObject({ code: "DigestMismatch" });
      // Bytes that do not hash to the descriptor are refused before anything is sent.
      const before = reg.seen.length;
      await expect(p.push(desc, { open: () => Readable.from([Buffer.from("{}")]) })).rejects.toMatchObject({ code: "DigestMismatch" });
      expect(reg.seen.length).toBe(before);
    } finally {
      await r.close();
    }
  });
});

describe("lent chunks (PushSource.chunks)", () => {
  /** A source that lends ONE buffer, overwritten as soon as the next chunk is asked for. */
  function lendingSource(data: Buffer, chunk: number, opts: { short?: number } = {}) {
    let opened = 0;
    return {
      opened: () => opened,
      source: {
        open: () => {
          opened++;
          return Readable.from([data]);
        },
        async *chunks() {
          const buf = Buffer.alloc(chunk);
          const end = data.byteLength - (opts.short ?? 0);
          for (let pos = 0; pos < end; pos += chunk) {
            const n = Math.min(chunk, end - pos);
            data.copy(buf, 0, pos, pos + n);
            yield buf.subarray(0, n);
            buf.fill(0xee); // the consumer said it was done with the chunk: reuse it
          }
        },
      },
    };
  }

  function slowPutServer() {
    const puts: Array<{ headers: IncomingMessage["headers"]; body: Buffer }> = [];
    const server = stub(async (req, res) => {
      const u = new URL(req.url ?? "/", "http://x");
      if (req.method === "HEAD") return void res.writeHead(404).end();
      if (req.method === "POST") return void res.writeHead(202, { location: "/upload/1" }).end();
      if (req.method === "PUT") {
        // Read slowly, so the client's socket fills and its writes wait for drain.
        const parts: Buffer[] = [];
        for await (const c of req) {
          parts.push(Buffer.from(c as Buffer));
          await new Promise((r) => setTimeout(r, 1));
        }
        const body = Buffer.concat(parts);
        puts.push({ headers: req.headers, body });
        return void res.writeHead(201, { "docker-content-digest": digestOf(body) === u.searchParams.get("digest") ? digestOf(body) : "sha256:bad" }).end();
      }
      res.writeHead(400).end();
    });
    return { server, puts };
  }

  it("are sent as one PUT with Content-Length, each chunk on the wire before the next is asked for", async () => {
    const data = Buffer.from(Array.from({ length: 5 * 1024 * 1024 + 333 }, (_, i) => (i * 7 + (i >> 12)) & 0xff));
    const desc: Descriptor = { mediaType: MediaTypes.OciLayer, digest: digestOf(data), size: data.byteLength };
    const { server, puts } = slowPutServer();
    const reg = await server;
    const lent = lendingSource(data, 1024 * 1024);
    const r = createRegistryResolver({ ...fast, credentials: {} });
    try {
      const p = await r.pusher(`${reg.host}/dst`);
      const progress: number[] = [];
      expect(await p.push(desc, lent.source, { onProgress: (n) => progress.push(n) })).toBe("pushed");
      expect(lent.opened()).toBe(0);
      expect(puts).toHaveLength(1);
      expect(puts[0]!.headers["content-length"]).toBe(String(data.byteLength));
      expect(puts[0]!.headers["transfer-encoding"]).toBeUndefined();
      expect(puts[0]!.body.equals(data)).toBe(true);
      expect(progress.at(-1)).toBe(data.byteLength);
    } finally {
      await r.close();
    }
  });

  it("a source that ends short fails the upload", async () => {
    const data = Buffer.alloc(300 * 1024, 7);
    const desc: Descriptor = { mediaType: MediaTypes.OciLayer, digest: digestOf(data), size: data.byteLength };
    const { server } = slowPutServer();
    const reg = await server;
    const r = createRegistryResolver({ ...fast, credentials: {} });
    try {
      const p = await r.pusher(`${reg.host}/dst`);
      await expect(p.push(desc, lendingSource(data, 64 * 1024, { short: 1000 }).source)).rejects.toMatchObject({ code: "SizeMismatch" });
    } finally {
      await r.close();
    }
  });
});
