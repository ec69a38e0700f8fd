/**
 * Plain-HTTP/1.1 GETs over keep-alive connections ferry manages itself, for blobs below the
 * socket-read size: the response head is parsed here (a few lines of text) and body bytes are
 * handed on as the socket delivers them, without undici's parser (llhttp in WebAssembly), its
 * request objects and stream layers. Measured on 1000 GETs of 4–64 KiB over 8 connections:
 * undici's `request` 0.61–0.64 CPU s, a bare keep-alive client 0.17–0.21 (issue 6).
 *
 * The answers taken are those with a Content-Length or a chunked body (or a body that ends with
 * the connection, for answers other than success), and a success must have no content coding;
 * anything else is declined before a byte is handed out (`get` resolves undefined and the caller
 * asks through undici).
 * A connection goes back to the pool once its answer's last byte has arrived, unless the server
 * said `Connection: close` or sent more than the answer; an idle one is closed after
 * `idleTimeoutMs`, or when the server closes it. A request whose reused connection turns out to
 * have been closed by the server (no byte of an answer) is sent once more on a new connection.
 */
import { connect, type Socket } from "node:net";
import { Readable } from "node:stream";
import { abortError } from "@ferry/core";
import { ChunkedDecoder } from "./chunked-decoder.ts";
import { getRequestHead, HeadReader, headTimeoutMs, type Head } from "./http1-head.ts";
import type { SocketGetRequest, SocketResponse } from "./socket-body.ts";

/** The same request as a socket read's: URL, lower-case headers, signal, stall timeout. */
export type PooledGetRequest = SocketGetRequest;

/** An answer: status, headers, and its body streamed as it arrives. */
export interface PooledResponse extends Omit<SocketResponse, "body"> {
  body: Readable;
}

export interface GetPoolOptions {
  /** Idle connections kept per origin. Default 16. */
  maxIdlePerOrigin?: number;
  /** An idle connection is closed after this long, in ms. Default 4000 (below common server keep-alive timeouts). */
  idleTimeoutMs?: number;
}

/** The server closed a reused connection before answering: worth one more try on a new one. */
class StaleConnectionError extends Error {}

/** Keep-alive connections per origin and the GETs sent over them. */
export class GetPool {
  readonly #idle = new Map<string, Connection[]>();
  readonly #maxIdle: number;
  readonly #idleTimeoutMs: number;
  #closed = false;

  constructor(options: GetPoolOptions = {}) {
    this.#maxIdle = options.maxIdlePerOrigin ?? 16;
    this.#idleTimeoutMs = options.idleTimeoutMs ?? 4000;
  }

  /** Idle connections now (for tests). */
  idleCount(origin?: string): number {
    if (origin !== undefined) return this.#idle.get(origin)?.length ?? 0;
    let n = 0;
    for (const list of this.#idle.values()) n += list.length;
    return n;
  }

  /**
   * Send `GET url`. Resolves with the answer once its head is in (the body streams), or
   * undefined, connection closed, when the answer is not one this path takes. Rejects with a
   * plain error (the HTTP client wraps and retries it) when no answer comes.
   */
  async get(req: PooledGetRequest): Promise<PooledResponse | undefined> {
    const request = getRequestHead(req.url, req.headers, "keep-alive");
    if (req.signal?.aborted) throw abortError(req.signal);
    for (let attempt = 0; ; attempt++) {
      // A retry after a stale connection goes on a new one (the next idle one may be stale too).
      const conn = (attempt === 0 ? this.#take(req.url.origin) : undefined) ?? (await this.#connect(req.url, req.signal, req.stallTimeoutMs));
      try {
        return await conn.exchange(request, req);
      } catch (err) {
        // Only a reused connection can be stale, and only once per request.
        if (err instanceof StaleConnectionError && attempt === 0) continue;
        throw err instanceof StaleConnectionError ? new Error(err.message) : err;
      }
    }
  }

  /** Close every idle connection; later answers close their connections instead of keeping them. */
  close(): void {
    this.#closed = true;
    for (const list of this.#idle.values()) for (const c of list) c.destroy();
    this.#idle.clear();
  }

  #take(origin: string): Connection | undefined {
    const list = this.#idle.get(origin);
    while (list !== undefined && list.length > 0) {
      const c = list.pop() as Connection;
      if (c.usable) {
        c.wake();
        return c;
      }
    }
    return undefined;
  }

  #connect(url: URL, signal: AbortSignal | undefined, stallMs: number): Promise<Connection> {
    return new Promise<Connection>((resolve, reject) => {
      const socket = connect({ host: url.hostname.replace(/^\[(.*)\]$/, "$1"), port: Number(url.port || 80), noDelay: true });
      const onAbort = (): void => {
        socket.destroy();
        reject(abortError(signal as AbortSignal));
      };
      const onTimeout = (): void => {
        signal?.removeEventListener("abort", onAbort);
        socket.destroy();
        reject(new Error(`no connection after ${stallMs} ms`));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      socket.setTimeout(stallMs);
      socket.once("timeout", onTimeout);
      socket.once("error", (err) => {
        signal?.removeEventListener("abort", onAbort);
        reject(err);
      });
      socket.once("connect", () => {
        signal?.removeEventListener("abort", onAbort);
        socket.removeAllListeners("error");
        socket.removeListener("timeout", onTimeout);
        socket.setTimeout(0);
        resolve(new Connection(socket, url.origin, (c) => this.#release(c)));
      });
    });
  }

  /** An answer is complete on `c`: keep the connection for the next GET, or close it. */
  #release(c: Connection): void {
    const list = this.#idle.get(c.origin) ?? [];
    if (this.#closed || !c.usable || list.length >= this.#maxIdle) {
      c.destroy();
      return;
    }
    list.push(c);
    this.#idle.set(c.origin, list);
    c.sleep(this.#idleTimeoutMs, () => {
      const i = list.indexOf(c);
      if (i >= 0) list.splice(i, 1);
    });
  }
}

/** One TCP connection and the exchange (request and answer) running on it, if any. */
class Connection {
  readonly origin: string;
  readonly #socket: Socket;
  readonly #onDone: (c: Connection) => void;
  #exchange: Exchange | undefined;
  #served = 0;
  #idleTimer: NodeJS.Timeout | undefined;
  #onIdleGone: (() => void) | undefined;

  constructor(socket: Socket, origin: string, onDone: (c: Connection) => void) {
    this.#socket = socket;
    this.origin = origin;
    this.#onDone = onDone;
    socket.on("data", (chunk: Buffer) => (this.#exchange ? this.#exchange.onData(chunk) : this.destroy()));
    socket.on("end", () => (this.#exchange ? this.#exchange.onEnd() : this.destroy()));
    socket.on("error", (err) => (this.#exchange ? this.#exchange.onError(err) : this.destroy()));
    socket.on("timeout", () => this.#exchange?.onStall());
    socket.on("close", () => {
      this.#exchange?.onError(new Error("connection closed"));
      this.#gone();
    });
  }

  get usable(): boolean {
    return !this.#socket.destroyed && this.#socket.writable && this.#socket.readable;
  }

  exchange(request: string, req: PooledGetRequest): Promise<PooledResponse | undefined> {
    return new Promise<PooledResponse | undefined>((resolve, reject) => {
      const reused = this.#served > 0;
      this.#served++;
      this.#exchange = new Exchange(this, req, reused, resolve, reject);
      this.#socket.setTimeout(req.stallTimeoutMs);
      this.#socket.write(request);
    });
  }

  /** Called by the exchange when its last body byte arrived (`keep`: the connection may serve another). */
  finished(keep: boolean): void {
    this.#exchange = undefined;
    this.#socket.setTimeout(0);
    if (keep) this.#onDone(this);
    else this.destroy();
  }

  pause(): void {
    this.#socket.setTimeout(0);
    this.#socket.pause();
  }

  resume(stallMs: number): void {
    this.#socket.setTimeout(stallMs);
    this.#socket.resume();
  }

  /** Idle in the pool: no hold on the process, closed after `ms` or when the server closes it. */
  sleep(ms: number, onGone: () => void): void {
    this.#onIdleGone = onGone;
    this.#socket.unref();
    this.#idleTimer = setTimeout(() => this.destroy(), ms);
    this.#idleTimer.unref();
  }

  wake(): void {
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    this.#onIdleGone = undefined;
    this.#socket.ref();
  }

  destroy(): void {
    this.#socket.destroy();
    this.#gone();
  }

  #gone(): void {
    clearTimeout(this.#idleTimer);
    const gone = this.#onIdleGone;
    this.#onIdleGone = undefined;
    gone?.();
  }
}

/** One request and its answer on a {@link Connection}. */
class Exchange {
  readonly #conn: Connection;
  readonly #req: PooledGetRequest;
  readonly #reused: boolean;
  #resolve: ((res: PooledResponse | undefined) => void) | undefined;
  #reject: ((err: Error) => void) | undefined;
  readonly #onAbort: () => void;
  readonly #headReader = new HeadReader();
  /** Bytes of this exchange's answer seen (a stale kept connection shows none). */
  #seen = 0;
  #body: PooledBody | undefined;
  /** Body bytes still to come; Infinity when the body ends with the connection or is chunked. */
  #remaining = 0;
  #chunked: ChunkedDecoder | undefined;
  #keepAlive = true;
  #over = false;
  /** Fails the exchange when the head is not complete in time (see HEAD_TIMEOUT_MS). */
  #headTimer: NodeJS.Timeout | undefined;

  constructor(conn: Connection, req: PooledGetRequest, reused: boolean, resolve: (res: PooledResponse | undefined) => void, reject: (err: Error) => void) {
    this.#conn = conn;
    this.#req = req;
    this.#reused = reused;
    this.#resolve = resolve;
    this.#reject = reject;
    this.#onAbort = () => this.#fail(abortError(req.signal as AbortSignal));
    if (req.signal?.aborted) queueMicrotask(this.#onAbort);
    else req.signal?.addEventListener("abort", this.#onAbort, { once: true });
    const ms = req.headTimeoutMs ?? headTimeoutMs(req.stallTimeoutMs);
    this.#headTimer = setTimeout(() => this.#fail(new Error(`no complete response head within ${ms} ms`)), ms);
  }

  onData(chunk: Buffer): void {
    if (this.#over) return;
    this.#seen += chunk.byteLength;
    if (this.#body === undefined) return this.#onHeadBytes(chunk);
    this.#onBodyBytes(chunk);
  }

  onEnd(): void {
    if (this.#remaining === Number.POSITIVE_INFINITY && this.#body !== undefined && this.#chunked === undefined) {
      // A body delimited by the close (an error answer without a length) is complete now.
      this.#keepAlive = false;
      this.#remaining = 0;
      this.#finishBody();
      return;
    }
    this.onError(new Error(this.#body === undefined ? "connection closed before the response head" : "connection closed before the end of the body"));
  }

  onError(err: Error): void {
    if (this.#over) return;
    // Nothing of an answer came on a reused connection: the server had closed it while idle.
    if (this.#reused && this.#body === undefined && this.#seen === 0) this.#fail(new StaleConnectionError(err.message));
    else this.#fail(err);
  }

  onStall(): void {
    this.#fail(new Error(`no bytes for ${this.#req.stallTimeoutMs} ms`));
  }

  /** The body's consumer wants more. */
  resume(): void {
    if (!this.#over) this.#conn.resume(this.#req.stallTimeoutMs);
  }

  /** The body was destroyed before its last byte arrived: the connection cannot be reused. */
  abandon(): void {
    if (this.#over) return;
    this.#over = true;
    this.#clearHeadTimer();
    this.#req.signal?.removeEventListener("abort", this.#onAbort);
    this.#conn.finished(false);
  }

  #onHeadBytes(chunk: Buffer): void {
    let got: ReturnType<HeadReader["push"]>;
    try {
      got = this.#headReader.push(chunk);
    } catch (err) {
      this.#fail(err as Error);
      return;
    }
    if (got === undefined) return;
    this.#clearHeadTimer();
    const { head, rest } = got;
    if (!this.#accept(head)) {
      this.#decline();
      return;
    }
    const h = head as Head;
    const length = h.headers.get("content-length");
    this.#remaining = length !== undefined ? Number(length[0]) : Number.POSITIVE_INFINITY;
    if (h.headers.has("transfer-encoding")) this.#chunked = new ChunkedDecoder();
    if (h.status === 204 || h.status === 304) {
      this.#remaining = 0;
      this.#chunked = undefined;
    }
    const closes = (h.headers.get("connection") ?? []).some((v) => /(^|,)\s*close\s*(,|$)/i.test(v));
    this.#keepAlive = (this.#remaining !== Number.POSITIVE_INFINITY || this.#chunked !== undefined) && !closes;
    const body = new PooledBody(this);
    this.#body = body;
    const resolve = this.#resolve as (res: PooledResponse) => void;
    this.#resolve = undefined;
    this.#reject = undefined;
    resolve({
      status: h.status,
      header: (name) => h.headers.get(name.toLowerCase())?.[0],
      headerAll: (name) => h.headers.get(name.toLowerCase()) ?? [],
      body,
    });
    if (rest.byteLength > 0 || this.#remaining === 0) this.#onBodyBytes(rest);
  }

  /**
   * A known length, or chunked (and then no length: both would be ambiguous framing), or for an
   * answer other than success a body that ends with the connection; a success must be plain bytes.
   */
  #accept(head: Head | undefined): boolean {
    if (head === undefined) return false;
    const length = head.headers.get("content-length");
    if (length !== undefined && !(length.length === 1 && /^\d+$/.test(length[0] as string))) return false;
    const te = head.headers.get("transfer-encoding");
    if (te !== undefined && (length !== undefined || te.join(",").trim().toLowerCase() !== "chunked")) return false;
    const success = head.status >= 200 && head.status < 300;
    if (!success) return true;
    const identity = (head.headers.get("content-encoding") ?? ["identity"]).every((v) => v.trim().toLowerCase() === "identity");
    return (length !== undefined || te !== undefined) && identity;
  }

  #onBodyBytes(chunk: Buffer): void {
    const body = this.#body as PooledBody;
    const dec = this.#chunked;
    if (dec !== undefined) {
      let full = false;
      let used: number;
      try {
        used = dec.feed(chunk, (data) => {
          if (!body.push(data)) full = true;
        });
      } catch (err) {
        this.#fail(err as Error);
        return;
      }
      if (used < chunk.byteLength) this.#keepAlive = false; // bytes past the answer
      if (dec.done) this.#finishBody();
      else if (full) this.#conn.pause();
      return;
    }
    const take = Math.min(chunk.byteLength, this.#remaining);
    if (chunk.byteLength > take) this.#keepAlive = false; // bytes past the answer: not a clean connection
    if (take > 0) {
      this.#remaining -= take;
      if (!body.push(chunk.subarray(0, take)) && this.#remaining > 0) this.#conn.pause();
    }
    if (this.#remaining === 0) this.#finishBody();
  }

  #clearHeadTimer(): void {
    clearTimeout(this.#headTimer);
    this.#headTimer = undefined;
  }

  #finishBody(): void {
    if (this.#over) return;
    this.#over = true;
    this.#req.signal?.removeEventListener("abort", this.#onAbort);
    this.#body?.push(null);
    this.#conn.finished(this.#keepAlive);
  }

  /** Not an answer this path takes: close the connection and let the caller ask through undici. */
  #decline(): void {
    this.#end().resolve?.(undefined);
  }

  #fail(err: Error): void {
    if (this.#over) return;
    const { reject } = this.#end();
    if (reject !== undefined) reject(err);
    else this.#body?.destroy(err);
  }

  /** The exchange is over without a clean answer: the connection is closed; who still waits. */
  #end(): { resolve?: (res: PooledResponse | undefined) => void; reject?: (err: Error) => void } {
    this.#over = true;
    this.#clearHeadTimer();
    this.#req.signal?.removeEventListener("abort", this.#onAbort);
    const waiting = { resolve: this.#resolve, reject: this.#reject };
    this.#resolve = undefined;
    this.#reject = undefined;
    this.#conn.finished(false);
    return waiting;
  }
}

/** The streaming body of a pooled answer: bytes as the socket delivers them, with back-pressure. */
class PooledBody extends Readable {
  readonly #exchange: Exchange;

  constructor(exchange: Exchange) {
    super();
    this.#exchange = exchange;
    // Readers see a failure through their reads; one that comes before anybody listens (bad
    // framing in the bytes that came with the head) must not become an uncaught exception.
    this.on("error", () => {});
  }

  override _read(): void {
    this.#exchange.resume();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#exchange.abandon();
    cb(err);
  }
}
