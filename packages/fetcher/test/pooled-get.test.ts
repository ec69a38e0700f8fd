/**
 * GetPool: GETs over ferry's own keep-alive connections. A raw TCP server plays the registry so
 * that every byte on the wire, and every connection, is under the test's control.
 */
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { spawn } from "node:child_process";
import { createServer, connect as netConnect, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { digestOf } from "@ferry/core";
import { createMemoryStore } from "@ferry/store-memory";
import { HttpClient } from "../src/http-client.ts";
import { createRegistryResolver, fetchToStore } from "../src/index.ts";
import { GetPool } from "../src/pooled-get.ts";

type Reply = (socket: Socket, request: string) => void;

interface RawServer {
  url: URL;
  /** Connections accepted so far. */
  connections: number;
  /** Request heads received, in order. */
  requests: string[];
  close(): Promise<void>;
}

const servers: RawServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

/** A server that answers each request head with `reply(socket, head)`. */
async function rawServer(reply: Reply): Promise<RawServer> {
  const sockets = new Set<Socket>();
  const state = { connections: 0, requests: [] as string[] };
  const server: Server = createServer((socket) => {
    state.connections++;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    let buffered = "";
    socket.on("data", (d) => {
      buffered += d.toString("latin1");
      let end: number;
      while ((end = buffered.indexOf("\r\n\r\n")) >= 0) {
        const head = buffered.slice(0, end);
        buffered = buffered.slice(end + 4);
        state.requests.push(head);
        reply(socket, head);
      }
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as { port: number }).port;
  const s: RawServer = {
    url: new URL(`http://127.0.0.1:${port}/v2/r/blobs/sha256:aa`),
    get connections() {
      return state.connections;
    },
    requests: state.requests,
    close: async () => {
      for (const so of sockets) so.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  servers.push(s);
  return s;
}

const ok = (body: Buffer, extra = ""): Buffer =>
  Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.byteLength}\r\n${extra}\r\n`), body]);

async function readAll(body: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of body) parts.push(c);
  return Buffer.concat(parts);
}

/** Run `fn` with a new pool, closed afterwards whatever happens. */
async function withPool(fn: (pool: GetPool) => Promise<void>): Promise<void> {
  const pool = new GetPool();
  try {
    await fn(pool);
  } finally {
    pool.close();
  }
}

const get = (pool: GetPool, url: URL, extra: Partial<Parameters<GetPool["get"]>[0]> = {}) =>
  pool.get({ url, headers: { "user-agent": "test" }, stallTimeoutMs: 2000, ...extra });

describe("GetPool", () => {
  it("sends sequential GETs over one kept connection, each body exact", async () => {
    const bodies = [randomBytes(1000), randomBytes(70_000), randomBytes(1)];
    let i = 0;
    const srv = await rawServer((so) => so.write(ok(bodies[i++]!)));
    await withPool(async (pool) => {
      for (const b of bodies) {
        const res = await get(pool, srv.url);
        expect(res?.status).toBe(200);
        expect((await readAll(res!.body)).equals(b)).toBe(true);
      }
      expect(srv.connections).toBe(1);
      expect(pool.idleCount(srv.url.origin)).toBe(1);
      expect(srv.requests[0]).toMatch(/^GET \/v2\/r\/blobs\/sha256:aa HTTP\/1\.1\r\n/);
      expect(srv.requests[0]).toContain("connection: keep-alive");
      expect(srv.requests[0]).toContain(`host: ${srv.url.host}`);
    });
  });

  it("sends a request again on a new connection when the server closed the kept one", async () => {
    const body = randomBytes(5000);
    // Every connection serves one answer, then the server closes it (without saying so).
    const srv = await rawServer((so) => {
      so.write(ok(body));
      setTimeout(() => so.destroy(), 20);
    });
    await withPool(async (pool) => {
      expect((await readAll((await get(pool, srv.url))!.body)).equals(body)).toBe(true);
      await new Promise((r) => setTimeout(r, 60)); // the server has closed the idle connection
      expect((await readAll((await get(pool, srv.url))!.body)).equals(body)).toBe(true);
      expect(srv.connections).toBe(2);
    });
  });

  it("does not keep a connection the answer said to close, or one that sent more than the answer", async () => {
    const body = randomBytes(100);
    let n = 0;
    const srv = await rawServer((so) => {
      n++;
      if (n === 1) so.write(ok(body, "Connection: close\r\n"));
      else so.write(Buffer.concat([ok(body), Buffer.from("HTTP/1.1 200 OK\r\n")])); // a stray extra
    });
    await withPool(async (pool) => {
      expect((await readAll((await get(pool, srv.url))!.body)).equals(body)).toBe(true);
      expect(pool.idleCount()).toBe(0);
      expect((await readAll((await get(pool, srv.url))!.body)).equals(body)).toBe(true);
      expect(pool.idleCount()).toBe(0);
      expect(srv.connections).toBe(2);
    });
  });

  it("decodes chunked answers, success or error, and keeps the connection after them", async () => {
    let n = 0;
    const srv = await rawServer((so) => {
      if (++n === 1) so.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n, blob\r\n0\r\nx-trailer: t\r\n\r\n");
      else {
        // An error answer, chunked, written a few bytes at a time.
        const text = "HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\nd\r\n{\"errors\":[]}\r\n0\r\n\r\n";
        for (let i = 0; i < text.length; i += 7) so.write(text.slice(i, i + 7));
      }
    });
    await withPool(async (pool) => {
      const a = await get(pool, srv.url);
      expect((await readAll(a!.body)).toString()).toBe("hello, blob");
      const b = await get(pool, srv.url);
      expect(b?.status).toBe(404);
      expect((await readAll(b!.body)).toString()).toBe('{"errors":[]}');
      expect(srv.connections).toBe(1);
      expect(pool.idleCount()).toBe(1);
    });
  });

  it("fails the body on broken chunk framing and drops the connection", async () => {
    const srv = await rawServer((so) => so.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello world\r\n0\r\n\r\n"));
    await withPool(async (pool) => {
      const res = await get(pool, srv.url);
      await expect(readAll(res!.body)).rejects.toThrow(/chunk/);
      expect(pool.idleCount()).toBe(0);
    });
  });

  it.each([
    ["a chunked answer with a Content-Length too (ambiguous framing)", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n"],
    ["a transfer coding other than chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"],
    ["a success without a length", "HTTP/1.1 200 OK\r\n\r\nhello"],
    ["a compressed success", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Encoding: gzip\r\n\r\nhello"],
    ["two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello"],
    ["a head that does not parse", "HTTP/2 200\r\n\r\n"],
  ])("declines %s (resolves undefined, connection closed) so undici asks again", async (_, answer) => {
    const srv = await rawServer((so) => so.write(answer));
    await withPool(async (pool) => {
      expect(await get(pool, srv.url)).toBeUndefined();
      expect(pool.idleCount()).toBe(0);
    });
  });

  it("hands back an error answer whose body ends with the connection, and skips informational heads", async () => {
    const srv = await rawServer((so) => {
      so.write('HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n\r\n{"errors":[]}');
      so.end();
    });
    await withPool(async (pool) => {
      const res = await get(pool, srv.url);
      expect(res?.status).toBe(404);
      expect(res?.header("content-type")).toBe("application/json");
      expect((await readAll(res!.body)).toString()).toBe('{"errors":[]}');
      expect(pool.idleCount()).toBe(0);
    });
  });

  it("delivers the bytes that came, then fails the body, when the connection drops mid-body", async () => {
    const srv = await rawServer((so) => {
      so.write("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
      so.write(Buffer.alloc(300, 7), () => so.destroy());
    });
    await withPool(async (pool) => {
      const res = await get(pool, srv.url);
      let got = 0;
      await expect(
        (async () => {
          for await (const c of res!.body as AsyncIterable<Buffer>) got += c.byteLength;
        })(),
      ).rejects.toThrow(/closed/);
      expect(got).toBe(300);
      expect(pool.idleCount()).toBe(0);
    });
  });

  it("fails with a plain error when no answer comes within the stall timeout", async () => {
    const srv = await rawServer(() => {});
    await withPool(async (pool) => {
      const err = await get(pool, srv.url, { stallTimeoutMs: 100 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toMatch(/no bytes for 100 ms/);
    });
  });

  it("fails with a plain error when the connection is not made within the stall timeout", async () => {
    // A listener in a stopped process: the kernel queues a connection or two, then drops SYNs,
    // so a connect waits (the way a black-holed host behaves).
    const child = spawn(process.execPath, ["-e", `const s = require("node:net").createServer(); s.listen({ port: 0, host: "127.0.0.1", backlog: 1 }, () => console.log(s.address().port));`], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    try {
      const [line] = (await once(child.stdout!, "data")) as [Buffer];
      const port = Number(line.toString().trim());
      child.kill("SIGSTOP");
      const fillers = Array.from({ length: 4 }, () => netConnect({ port, host: "127.0.0.1" }).on("error", () => {}));
      try {
        await new Promise((r) => setTimeout(r, 100));
        await withPool(async (pool) => {
          const started = performance.now();
          const err = await get(pool, new URL(`http://127.0.0.1:${port}/v2/r/blobs/sha256:aa`), { stallTimeoutMs: 150 }).catch((e: unknown) => e);
          expect(err).toBeInstanceOf(Error);
          expect((err as Error).message).toBe("no connection after 150 ms");
          expect(performance.now() - started).toBeLessThan(5000); // not the kernel's SYN retries
          expect(pool.idleCount()).toBe(0);
        });
      } finally {
        for (const f of fillers) f.destroy();
      }
    } finally {
      child.kill("SIGKILL");
    }
  });

  it("fails with a plain error when the head trickles in for longer than the head timeout", async () => {
    const srv = await rawServer((so) => {
      so.write("HTTP/1.1 200 OK\r\n");
      const drip = setInterval(() => (so.destroyed ? clearInterval(drip) : so.write("X-Drip: 1\r\n")), 50);
      so.on("close", () => clearInterval(drip));
    });
    await withPool(async (pool) => {
      await expect(get(pool, srv.url, { headTimeoutMs: 400 })).rejects.toThrow(/no complete response head within 400 ms/);
      expect(pool.idleCount()).toBe(0);
    });
  });

  it("stops at once on abort, before or while waiting, and closes the connection", async () => {
    const srv = await rawServer(() => {});
    await withPool(async (pool) => {
      const ac = new AbortController();
      const p = get(pool, srv.url, { signal: ac.signal });
      setTimeout(() => ac.abort(), 30);
      await expect(p).rejects.toMatchObject({ code: "Aborted" });
      await expect(get(pool, srv.url, { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: "Aborted" });
      expect(pool.idleCount()).toBe(0);
    });
  });

  it("refuses a header that would split the request, sending nothing", async () => {
    const srv = await rawServer(() => {});
    await withPool(async (pool) => {
      await expect(pool.get({ url: srv.url, headers: { "x-evil": "a\r\nInjected: 1" }, stallTimeoutMs: 1000 })).rejects.toMatchObject({ code: "InvalidArgument" });
      expect(srv.connections).toBe(0);
    });
  });

  it("closes idle connections after idleTimeoutMs, and all of them on close()", async () => {
    const body = randomBytes(10);
    const srv = await rawServer((so) => so.write(ok(body)));
    const pool = new GetPool({ idleTimeoutMs: 50 });
    await readAll((await get(pool, srv.url))!.body);
    expect(pool.idleCount()).toBe(1);
    await new Promise((r) => setTimeout(r, 120));
    expect(pool.idleCount()).toBe(0);
    const again = new GetPool();
    await readAll((await get(again, srv.url))!.body);
    expect(again.idleCount()).toBe(1);
    again.close();
    expect(again.idleCount()).toBe(0);
  });

  it("streams a large body with back-pressure to a slow reader, exact", async () => {
    const body = randomBytes(6 * 1024 * 1024);
    const srv = await rawServer((so) => so.write(ok(body)));
    await withPool(async (pool) => {
      const res = await get(pool, srv.url);
      const parts: Buffer[] = [];
      for await (const c of res!.body as AsyncIterable<Buffer>) {
        parts.push(c);
        if (parts.length % 16 === 0) await new Promise((r) => setTimeout(r, 1));
      }
      expect(Buffer.concat(parts).equals(body)).toBe(true);
      expect(pool.idleCount()).toBe(1);
    });
  });
});

describe("HttpClient with pooledRead", () => {
  it("reuses its keep-alive connections for blob GETs and follows a redirect on them", async () => {
    const body = randomBytes(2000);
    const srv = await rawServer((so, head) => {
      if (head.startsWith("GET /v2/r/blobs/sha256:aa ")) so.write(`HTTP/1.1 307 Temporary Redirect\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n`);
      else so.write(ok(body));
    });
    const http = new HttpClient({ concurrencyPerHost: 2 });
    try {
      for (let i = 0; i < 3; i++) {
        const res = await http.send({ method: "GET", url: srv.url, scopes: [], pooledRead: true });
        expect(res.status).toBe(200);
        expect(res.url.pathname).toBe("/elsewhere");
        expect((await readAll(res.body as AsyncIterable<Buffer>)).equals(body)).toBe(true);
      }
      expect(srv.requests.length).toBe(6);
      expect(srv.connections).toBe(1);
    } finally {
      await http.close();
    }
  });

  it("asks again through undici when the pooled answer is declined (a compressed success)", async () => {
    const srv = await rawServer((so, head) => {
      if (head.includes("connection: keep-alive")) so.write("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 5\r\n\r\nhello");
      else so.write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
    });
    const http = new HttpClient();
    try {
      const res = await http.send({ method: "GET", url: srv.url, scopes: [], pooledRead: true });
      expect((await readAll(res.body as AsyncIterable<Buffer>)).toString()).toBe("hello");
      expect(srv.requests.length).toBe(2);
    } finally {
      await http.close();
    }
  });
});

describe("RegistryFetcher over keep-alive reads", () => {
  it("fails with Network, not hangs, when a chunked body breaks in the bytes that came with its head", async () => {
    // The body fails before the fetcher listens to it: a missed 'error' left every read waiting.
    const srv = await rawServer((so, head) => {
      if (head.startsWith("GET /v2/ ")) so.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
      else so.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n");
    });
    const data = randomBytes(5000);
    const desc = { mediaType: "application/vnd.oci.image.layer.v1.tar", digest: digestOf(data), size: data.byteLength };
    const resolver = createRegistryResolver({ retry: { maxAttempts: 2, minDelayMs: 5, maxDelayMs: 10 } });
    try {
      const f = await resolver.fetcher(`${srv.url.host}/r`);
      const store = createMemoryStore();
      await expect(fetchToStore(f, desc, store)).rejects.toMatchObject({ code: "Network" });
      await expect(bytesOf(await f.fetch(desc))).rejects.toMatchObject({ code: "Network" });
      await expect((await f.readerAt(desc)).read(0, 100)).rejects.toMatchObject({ code: "Network" });
      await expect(store.info(desc.digest)).rejects.toMatchObject({ code: "NotFound" });
    } finally {
      await resolver.close();
    }
  });
});

async function bytesOf(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  return Buffer.concat(parts);
}
