/** A tiny node:http server on 127.0.0.1 for protocol corner cases a real registry never shows. */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach } from "vitest";

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  /** Header names in the order they came (tells one HTTP client from another). */
  headerNames: string[];
}

export interface StubServer {
  host: string;
  origin: string;
  seen: SeenRequest[];
  close(): Promise<void>;
}

export async function startStub(handler: (req: IncomingMessage, res: ServerResponse) => unknown): Promise<StubServer> {
  const seen: SeenRequest[] = [];
  const server = createServer((req, res) => {
    const headerNames = req.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
    seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, headerNames });
    Promise.resolve(handler(req, res)).catch((err: unknown) => {
      res.statusCode = 500;
      res.end(String(err));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    origin: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * A `startStub` whose servers are all closed after each test of the calling file. Call it once at
 * the top of a test file: `const stub = stubsPerTest();`.
 */
export function stubsPerTest(): (handler: Parameters<typeof startStub>[0]) => Promise<StubServer> {
  const servers: StubServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });
  return async (handler) => {
    const s = await startStub(handler);
    servers.push(s);
    return s;
  };
}

/** A handler serving `data` as a blob that honours closed `Range: bytes=s-e` requests (206). */
export function rangeHandler(data: Uint8Array): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? "");
    if (!m) return void res.writeHead(200, { "content-length": data.byteLength }).end(data);
    const s = Number(m[1]);
    const e = Math.min(Number(m[2]), data.byteLength - 1);
    res.writeHead(206, { "content-length": e - s + 1, "content-range": `bytes ${s}-${e}/${data.byteLength}` }).end(data.subarray(s, e + 1));
  };
}
