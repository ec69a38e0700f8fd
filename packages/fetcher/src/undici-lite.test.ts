import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Agent, request } from "./undici-lite.ts";

let server: Server;
let base: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ method: req.method, url: req.url, body, ua: req.headers["user-agent"] }));
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe("undici-lite", () => {
  it("sends method, path, query, headers and body through a given Agent", async () => {
    const agent = new Agent({ connections: 1 });
    try {
      const res = await request(new URL(`${base}/v2/a/b?n=1&last=x`), {
        method: "POST",
        headers: { "user-agent": "lite-test" },
        body: "hello",
        dispatcher: agent,
      });
      expect(res.statusCode).toBe(200);
      expect(await res.body.json()).toEqual({ method: "POST", url: "/v2/a/b?n=1&last=x", body: "hello", ua: "lite-test" });
    } finally {
      await agent.close();
    }
  });

  it("defaults to GET on undici's global dispatcher", async () => {
    const res = await request(`${base}/plain`, {});
    expect(await res.body.json()).toMatchObject({ method: "GET", url: "/plain" });
  });

  it("keeps undici's index (fetch, WebSocket, caches, mocks) out of a bundle of @ferry/fetcher", async () => {
    // The point of undici-lite: ~1 MB less JavaScript and ~9 MB less RSS in every ferry process.
    const req = createRequire(createRequire(import.meta.url).resolve("tsx/package.json"));
    const esbuild = req("esbuild") as {
      build(o: Record<string, unknown>): Promise<{ metafile: { inputs: Record<string, unknown> } }>;
    };
    const entry = fileURLToPath(new URL("./index.ts", import.meta.url));
    const { metafile } = await esbuild.build({ entryPoints: [entry], bundle: true, write: false, platform: "node", format: "esm", metafile: true, logLevel: "silent" });
    const undiciFiles = Object.keys(metafile.inputs).filter((f) => f.includes("/undici/"));
    expect(undiciFiles.some((f) => f.endsWith("/undici/lib/dispatcher/agent.js"))).toBe(true);
    expect(undiciFiles.filter((f) => f.endsWith("/undici/index.js") || f.endsWith("/lib/web/fetch/index.js") || f.includes("/lib/web/websocket/") || f.includes("/lib/mock/") || f.includes("/lib/cache/"))).toEqual([]);
  });
});
