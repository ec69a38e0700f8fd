/**
 * Socket reads (`socketReadMinBytes`): a large blob GET on a connection of its own whose body
 * fills the consumer's buffers (`readInto`), the head handed to the HTTP client like undici's,
 * chunked answers asked again through undici. The fault suite (faults.test.ts) runs every
 * injected fault through this path too.
 */
import type { ServerResponse } from "node:http";
import { describe, expect, it } from "vitest";
import { digestOf, MediaTypes, type Descriptor } from "@ferry/core";
import { lendingWriter } from "@ferry/core/testsuite";
import { createMemoryStore } from "@ferry/store-memory";
import { createRegistryResolver, fetchToStore, type RegistryFetcher } from "../src/index.ts";
import { socketGet, type SocketResponse } from "../src/socket-body.ts";
import { rangeHandler, stubsPerTest } from "./stub-server.ts";

const stub = stubsPerTest();
const MiB = 1024 * 1024;

function pattern(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i + 4 <= n; i += 4) b.writeUInt32LE((i * 2654435761) >>> 0, i);
  return b;
}
const data = pattern(3 * MiB + 12_345);
const desc: Descriptor = { mediaType: MediaTypes.OciLayer, digest: digestOf(data), size: data.byteLength };

async function get(origin: string, opts: { signal?: AbortSignal; stallTimeoutMs?: number } = {}): Promise<SocketResponse | undefined> {
  return socketGet({ url: new URL(`${origin}/v2/r/blobs/${desc.digest}`), headers: { "user-agent": "t" }, signal: opts.signal, stallTimeoutMs: opts.stallTimeoutMs ?? 5_000 });
}

/** Send the head and `part` of `data`, then leave the connection open (or cut it). */
function partial(res: ServerResponse, part: number, then: "hang" | "cut"): void {
  res.writeHead(200, { "content-length": data.byteLength });
  res.write(data.subarray(0, part), () => {
    if (then === "cut") res.socket?.destroy();
  });
}

describe("socketGet", () => {
  it("fills lent buffers straight from the socket, exactly to the Content-Length", async () => {
    const reg = await stub(rangeHandler(data));
    const res = (await get(reg.origin)) as SocketResponse;
    expect(res.status).toBe(200);
    expect(res.header("Content-Length")).toBe(String(data.byteLength));
    const out = Buffer.alloc(data.byteLength + 10);
    const counts: number[] = [];
    let at = 0;
    for (;;) {
      const n = await res.body.readInto(out.subarray(at, Math.min(at + MiB, out.byteLength)));
      if (n === 0) break;
      counts.push(n);
      at += n;
    }
    expect(counts).toEqual([MiB, MiB, MiB, 12_345]);
    expect(out.subarray(0, at).equals(data)).toBe(true);
    expect(reg.seen[0]?.headers.connection).toBe("close");
    expect(reg.seen[0]?.headers["user-agent"]).toBe("t");
  });

  it("is a plain Readable to a consumer that iterates it", async () => {
    const reg = await stub(rangeHandler(data));
    const res = (await get(reg.origin)) as SocketResponse;
    const parts: Buffer[] = [];
    for await (const c of res.body) parts.push(c as Buffer);
    expect(Buffer.concat(parts).equals(data)).toBe(true);
  });

  it("declines a chunked answer (the caller asks undici) and hands back other answers with their body", async () => {
    const chunked = await stub((_req, res) => {
      res.writeHead(200);
      res.write("abc");
      res.end("def");
    });
    expect(await get(chunked.origin)).toBeUndefined();
    const throttled = await stub((_req, res) => {
      const body = JSON.stringify({ errors: [{ code: "TOOMANYREQUESTS", message: "slow down" }] });
      res.writeHead(429, { "retry-after": "2", "content-length": Buffer.byteLength(body) }).end(body);
    });
    const res = (await get(throttled.origin)) as SocketResponse;
    expect(res.status).toBe(429);
    expect(res.headerAll("retry-after")).toEqual(["2"]);
    const parts: Buffer[] = [];
    for await (const c of res.body) parts.push(c as Buffer);
    expect(JSON.parse(Buffer.concat(parts).toString()).errors[0].code).toBe("TOOMANYREQUESTS");
  });

  it("a body without a length (an error answer) runs to the close", async () => {
    const reg = await stub((_req, res) => {
      // No Content-Length and no chunking: HTTP/1.0-style, delimited by the close.
      res.socket?.end("HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\n\r\nno such blob");
    });
    const res = (await get(reg.origin)) as SocketResponse;
    expect(res.status).toBe(404);
    const parts: Buffer[] = [];
    for await (const c of res.body) parts.push(c as Buffer);
    expect(Buffer.concat(parts).toString()).toBe("no such blob");
  });

  it("a connection cut mid-body hands over the bytes that came, then fails with Network", async () => {
    const reg = await stub((_req, res) => partial(res, 100_000, "cut"));
    const res = (await get(reg.origin)) as SocketResponse;
    const buf = Buffer.alloc(MiB);
    const n = await res.body.readInto(buf);
    expect(n).toBeGreaterThan(0);
    expect(n).toBeLessThanOrEqual(100_000);
    expect(buf.subarray(0, n).equals(data.subarray(0, n))).toBe(true);
    let rest = 100_000 - n;
    let err: unknown;
    try {
      while (rest > 0) rest -= await res.body.readInto(buf);
      await res.body.readInto(buf);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: "Network" });
    expect(String((err as Error).message)).toMatch(/connection ended at byte 100000 of/);
  });

  it("fails a read that waits longer than the stall timeout", async () => {
    const reg = await stub((_req, res) => partial(res, 10, "hang"));
    const res = (await get(reg.origin, { stallTimeoutMs: 150 })) as SocketResponse;
    const buf = Buffer.alloc(MiB);
    let got = 0;
    const err = await (async () => {
      for (;;) got += await res.body.readInto(buf);
    })().catch((e: unknown) => e);
    expect(got).toBe(10);
    expect(err).toMatchObject({ code: "Network", message: expect.stringMatching(/no bytes for 150 ms/) });
  });

  it("fails when the head trickles in for longer than the head timeout, each byte within the stall timeout", async () => {
    const reg = await stub((_req, res) => {
      const so = res.socket!;
      so.write("HTTP/1.1 200 OK\r\n");
      const drip = setInterval(() => (so.destroyed ? clearInterval(drip) : so.write("X-Drip: 1\r\n")), 50);
      so.on("close", () => clearInterval(drip));
    });
    const url = new URL(`${reg.origin}/v2/r/blobs/${desc.digest}`);
    await expect(socketGet({ url, headers: { "user-agent": "t" }, stallTimeoutMs: 5_000, headTimeoutMs: 400 })).rejects.toThrow(/no complete response head within 400 ms/);
  });

  it("an abort rejects a pending read with Aborted", async () => {
    const reg = await stub((_req, res) => res.writeHead(200, { "content-length": data.byteLength }).flushHeaders());
    const ac = new AbortController();
    const res = (await get(reg.origin, { signal: ac.signal })) as SocketResponse;
    const pending = res.body.readInto(Buffer.alloc(MiB));
    setTimeout(() => ac.abort(), 20);
    await expect(pending).rejects.toMatchObject({ code: "Aborted" });
  });

  it("refuses a header name or value that would split the request", async () => {
    const reg = await stub(rangeHandler(data));
    const url = new URL(`${reg.origin}/v2/r/blobs/${desc.digest}`);
    await expect(socketGet({ url, headers: { "user-agent": "a\r\nx-injected: 1" }, stallTimeoutMs: 1000 })).rejects.toMatchObject({ code: "InvalidArgument" });
    await expect(socketGet({ url, headers: { "bad name": "v" }, stallTimeoutMs: 1000 })).rejects.toThrow(/invalid HTTP header/);
    expect(reg.seen).toEqual([]);
  });

  it("skips informational answers (103 Early Hints) before the real head", async () => {
    const small = data.subarray(0, 5000);
    const reg = await stub((_req, res) => {
      res.socket?.end(
        Buffer.concat([
          Buffer.from("HTTP/1.1 103 Early Hints\r\nlink: </x>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 5000\r\n\r\n"),
          small,
        ]),
      );
    });
    const res = (await get(reg.origin)) as SocketResponse;
    expect(res.status).toBe(200);
    const buf = Buffer.alloc(8000);
    expect(await res.body.readInto(buf)).toBe(5000);
    expect(buf.subarray(0, 5000).equals(small)).toBe(true);
  });

  it("refuses a head larger than 64 KiB", async () => {
    const reg = await stub((_req, res) => {
      res.socket?.end(`HTTP/1.1 200 OK\r\nx-pad: ${"a".repeat(70 * 1024)}\r\ncontent-length: 1\r\n\r\nz`);
    });
    await expect(get(reg.origin)).rejects.toThrow(/response head over 65536 bytes/);
  });
});


describe("RegistryFetcher with socket reads", () => {
  it("reads blobs of at least socketReadMinBytes on their own connection, into the writer's window", async () => {
    const reg = await stub(rangeHandler(data));
    const r = createRegistryResolver({ socketReadMinBytes: MiB });
    try {
      const f = (await r.fetcher(`${reg.host}/r`)) as RegistryFetcher;
      const store = createMemoryStore();
      const window = new Uint8Array(MiB);
      const seen: Uint8Array[] = [];
      const ingester = { writer: async (o: Parameters<typeof store.writer>[0]) => lendingWriter(await store.writer(o), window, seen) };
      expect(await fetchToStore(f, desc, ingester)).toBe("written");
      expect((await store.info(desc.digest)).size).toBe(data.byteLength);
      // Every write was a prefix of the lent window: the socket filled it.
      expect(seen.length).toBe(4);
      for (const c of seen) expect(c.buffer === window.buffer && c.byteOffset === window.byteOffset).toBe(true);
      expect(reg.seen.map((s) => s.headers.connection)).toEqual(["close"]);
    } finally {
      await r.close();
    }
  });

  it("keeps undici (kept-alive connections) below the threshold and when turned off", async () => {
    const reg = await stub(rangeHandler(data));
    for (const socketReadMinBytes of [data.byteLength + 1, Infinity]) {
      const r = createRegistryResolver({ socketReadMinBytes });
      try {
        const f = await r.fetcher(`${reg.host}/r`);
        expect(await fetchToStore(f, desc, createMemoryStore())).toBe("written");
      } finally {
        await r.close();
      }
    }
    expect(reg.seen.map((s) => s.headers.connection)).toEqual(["keep-alive", "keep-alive"]);
  });

  it("follows a redirect and resumes at an offset (206) over socket reads", async () => {
    const serve = rangeHandler(data);
    const reg = await stub((req, res) => {
      if (req.url?.startsWith("/v2/")) return void res.writeHead(307, { location: "/storage/blob", "content-length": 0 }).end();
      serve(req, res);
    });
    const r = createRegistryResolver({ socketReadMinBytes: MiB });
    try {
      const f = await r.fetcher(`${reg.host}/r`);
      const store = createMemoryStore();
      const w = await store.writer({ ref: "resume", total: desc.size, expected: desc.digest });
      await w.write(data.subarray(0, 1_500_000));
      await w.close();
      expect(await fetchToStore(f, desc, store, { ref: "resume" })).toBe("written");
      expect(reg.seen.map((s) => [s.url.split("/")[1], s.headers.range, s.headers.connection])).toEqual([
        ["v2", `bytes=1500000-${data.byteLength - 1}`, "close"],
        ["storage", `bytes=1500000-${data.byteLength - 1}`, "close"],
      ]);
    } finally {
      await r.close();
    }
  });

  it("readInto over an undici body copies chunks and ends with 0, even once the stream has closed itself", async () => {
    const small = data.subarray(0, 100_000);
    const smallDesc: Descriptor = { mediaType: MediaTypes.OciLayer, digest: digestOf(small), size: small.byteLength };
    const reg = await stub(rangeHandler(small));
    const r = createRegistryResolver();
    try {
      const f = await r.fetcher(`${reg.host}/r`);
      const s = await f.fetch(smallDesc);
      const buf = Buffer.alloc(30_000);
      const parts: Buffer[] = [];
      for (let n = await s.readInto!(buf); n > 0; n = await s.readInto!(buf)) {
        parts.push(Buffer.from(buf.subarray(0, n)));
        // Let the stream emit 'end' and auto-destroy between reads.
        await new Promise((res) => setTimeout(res, 5));
      }
      expect(Buffer.concat(parts).equals(small)).toBe(true);
      expect(await s.readInto!(buf)).toBe(0);
    } finally {
      await r.close();
    }
  });

  it("parallel ranges, however large, are read through undici (merged streams cannot fill lent batches), in order", async () => {
    const reg = await stub(rangeHandler(data));
    const r = createRegistryResolver({ socketReadMinBytes: MiB, parallelRangeThreshold: 0, rangeChunkSize: MiB, parallelRanges: 3 });
    try {
      const f = await r.fetcher(`${reg.host}/r`);
      const store = createMemoryStore();
      expect(await fetchToStore(f, desc, store)).toBe("written");
      const parts: Buffer[] = [];
      for await (const c of await f.fetch(desc)) parts.push(c as Buffer);
      expect(Buffer.concat(parts).equals(data)).toBe(true);
      // 3 whole MiB ranges and the 12 345-byte tail, twice: none on a socket of its own
      // (Connection: close), none on ferry's keep-alive connections (which write host last).
      expect(reg.seen).toHaveLength(8);
      expect(reg.seen.every((x) => x.headers.connection === "keep-alive")).toBe(true);
      expect(reg.seen.every((x) => x.headerNames[0] === "host")).toBe(true);
    } finally {
      await r.close();
    }
  });

  it("a serial read of the same blob does use a socket of its own (the contrast to the test above)", async () => {
    const reg = await stub(rangeHandler(data));
    const r = createRegistryResolver({ socketReadMinBytes: MiB });
    try {
      const f = await r.fetcher(`${reg.host}/r`);
      expect(await fetchToStore(f, desc, createMemoryStore())).toBe("written");
      expect(reg.seen.map((x) => x.headers.connection)).toEqual(["close"]);
      expect(reg.seen[0]!.headerNames.at(-1)).toBe("connection");
    } finally {
      await r.close();
    }
  });

  it("a chunked answer is asked again through undici and still arrives whole", async () => {
    const reg = await stub((_req, res) => {
      res.writeHead(200);
      res.end(data);
    });
    const r = createRegistryResolver({ socketReadMinBytes: MiB });
    try {
      const f = await r.fetcher(`${reg.host}/r`);
      expect(await fetchToStore(f, desc, createMemoryStore())).toBe("written");
      expect(reg.seen.map((s) => s.headers.connection)).toEqual(["close", "keep-alive"]);
    } finally {
      await r.close();
    }
  });
});
