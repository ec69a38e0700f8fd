/** Per-request context and the few response helpers every handler uses. */
import type { IncomingMessage, ServerResponse } from "node:http";
import { PassThrough, Readable, type Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { FaultPlan } from "./faults.ts";
import { OciHttpError } from "./oci-errors.ts";

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  method: string;
  url: URL;
  /** Aborted when the client goes away before the response is complete. */
  signal: AbortSignal;
  /** Absolute base URL of this server as the client addressed it (`http://host:port`). */
  base: string;
  faults?: FaultPlan;
  /** The request target or the Host header does not make a URL: the handler answers 400. */
  malformed?: boolean;
}

/** Never throws: a target or Host that does not parse gives a placeholder URL and `malformed`. */
export function createContext(req: IncomingMessage, res: ServerResponse, faults?: FaultPlan): RequestContext {
  let host = req.headers.host ?? "127.0.0.1";
  let url: URL;
  let malformed = false;
  try {
    url = new URL(req.url ?? "/", `http://${host}`);
  } catch {
    malformed = true;
    host = "127.0.0.1";
    url = new URL("http://127.0.0.1/");
  }
  const ac = new AbortController();
  res.on("close", () => {
    if (!res.writableFinished) ac.abort();
  });
  return { req, res, method: (req.method ?? "GET").toUpperCase(), url, signal: ac.signal, base: `http://${host}`, faults, malformed };
}

export type Headers = Record<string, string | number>;

/** Answer with no body. */
export function sendEmpty(ctx: RequestContext, status: number, headers: Headers = {}): void {
  ctx.res.writeHead(status, { ...headers, "Content-Length": "0" });
  ctx.res.end();
}

/** Answer with a small in-memory body (JSON documents, manifests). HEAD gets the headers only. */
export async function sendBuffer(
  ctx: RequestContext,
  status: number,
  headers: Headers,
  body: Uint8Array,
): Promise<void> {
  const h = { ...headers, "Content-Length": String(body.byteLength) };
  if (ctx.method === "HEAD") {
    ctx.res.writeHead(status, h);
    ctx.res.end();
    return;
  }
  if (ctx.faults === undefined || ctx.faults.response.length === 0) {
    ctx.res.writeHead(status, h);
    ctx.res.end(body);
    return;
  }
  await sendStream(ctx, status, h, Readable.from([Buffer.from(body)]));
}

export async function sendJson(ctx: RequestContext, status: number, value: unknown, headers: Headers = {}): Promise<void> {
  await sendBuffer(ctx, status, { "Content-Type": "application/json", ...headers }, Buffer.from(JSON.stringify(value)));
}

/** Stream a body (blobs). Fault transforms apply here; a failure destroys the connection. */
export async function sendStream(ctx: RequestContext, status: number, headers: Headers, body: Readable): Promise<void> {
  ctx.res.writeHead(status, headers);
  const stages: Transform[] = (ctx.faults?.response ?? []).map((make) => make());
  try {
    await pipeline([body, ...stages, ctx.res], { signal: ctx.signal });
  } catch {
    // Headers are gone: the only way to tell the client is to cut the connection.
    body.destroy();
    ctx.res.destroy();
  }
}

export async function sendError(ctx: RequestContext, err: OciHttpError): Promise<void> {
  const body = Buffer.from(err.body());
  const headers: Headers = { "Content-Type": "application/json", ...err.headers };
  if (ctx.res.headersSent) {
    ctx.res.destroy();
    return;
  }
  if (ctx.method === "HEAD") {
    ctx.res.writeHead(err.status, { ...headers, "Content-Length": String(body.length) });
    ctx.res.end();
    return;
  }
  ctx.res.writeHead(err.status, { ...headers, "Content-Length": String(body.length) });
  ctx.res.end(body);
}

/**
 * The request body as a stream; a fault rule may cut the connection after N bytes (the bytes
 * before the cut still reach the handler, as they would from a real dropped upload).
 */
export function requestBody(ctx: RequestContext): Readable {
  const limit = ctx.faults?.dropRequestAfter;
  if (limit === undefined) return ctx.req;
  let seen = 0;
  const out = new PassThrough();
  ctx.req.on("data", (chunk: Buffer) => {
    if (seen >= limit) return;
    const room = limit - seen;
    seen += Math.min(room, chunk.length);
    // Keep backpressure: a slow store must not make the whole upload pile up in memory.
    if (!out.write(room >= chunk.length ? chunk : chunk.subarray(0, room))) {
      ctx.req.pause();
      out.once("drain", () => ctx.req.resume());
    }
    if (seen >= limit) {
      // End (not destroy) the stream so the bytes before the cut reach the store, as they
      // would when a real connection drops between two TCP segments.
      ctx.req.socket.destroy();
      out.end();
    }
  });
  ctx.req.on("end", () => {
    if (seen < limit) out.end();
  });
  ctx.req.on("error", (e) => out.destroy(e));
  ctx.req.on("aborted", () => {
    if (seen < limit) out.destroy(new OciHttpError("BLOB_UPLOAD_INVALID", "client aborted the request"));
  });
  return out;
}

/**
 * Read a small body (manifests) fully, refusing more than `max` bytes without buffering them.
 * Past the cap the rest is drained, not kept, so the error answer reaches the client.
 */
export async function readCapped(
  stream: Readable,
  max: number,
  what: string,
  declaredLength?: string,
): Promise<Buffer> {
  const tooBig = (close = false): OciHttpError =>
    new OciHttpError("SIZE_INVALID", `${what} exceeds ${max} bytes`, {
      status: 413,
      // Announced too big: answer at once and close rather than drain it.
      headers: close ? { Connection: "close" } : {},
    });
  if (declaredLength !== undefined && Number(declaredLength) > max) throw tooBig(true);
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    stream.on("data", (chunk: Buffer) => {
      total += chunk.length;
      if (total <= max) chunks.push(chunk);
      else chunks.length = 0;
    });
    stream.once("end", () => (total > max ? reject(tooBig()) : resolve(Buffer.concat(chunks))));
    stream.once("error", reject);
    stream.once("close", () => {
      if (!stream.readableEnded) reject(new OciHttpError("MANIFEST_INVALID", `${what} body incomplete`));
    });
  });
}

/** True when the request announces a body (Content-Length > 0 or chunked). */
export function hasBody(ctx: RequestContext): boolean {
  const len = ctx.req.headers["content-length"];
  if (len !== undefined) return Number(len) > 0;
  return ctx.req.headers["transfer-encoding"] !== undefined;
}

/** Drain an unwanted request body so the connection can be reused. */
export function discardBody(ctx: RequestContext): void {
  if (!ctx.req.readableEnded) ctx.req.resume();
}
