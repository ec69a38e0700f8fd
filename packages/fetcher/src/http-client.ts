/**
 * The HTTP layer every registry call goes through: undici `request` over a per-origin pool, a
 * per-host concurrency limit, retries with exponential backoff and full jitter (state shared per
 * host, so a 429 storm slows every request to that host), `Retry-After`, auth challenges, safe
 * redirects and typed, redacted errors.
 */
import type { Readable } from "node:stream";
import pLimit, { type LimitFunction } from "p-limit";
import type { Dispatcher } from "undici";
import { Agent, request } from "./undici-lite.ts";
import {
  abortError,
  FerryError,
  NetworkError,
  TooManyRequestsError,
  sleep,
  UnauthorizedError,
  type RetryInfo,
} from "@ferry/core";
import type { AuthScope, RequestAuthorizer, RetryOptions } from "./options.ts";
import { parseRegistryErrors, redactUrl, registryError } from "./registry-error.ts";
import { GetPool, type PooledGetRequest, type PooledResponse } from "./pooled-get.ts";
import { socketGet } from "./socket-body.ts";
import { headTimeoutMs } from "./http1-head.ts";
import { resolveLocation } from "./location.ts";

export type HttpMethod = "GET" | "HEAD" | "PUT" | "POST" | "PATCH" | "DELETE";

/**
 * A body the client can send again on a retry, or a one-shot stream or iterable (never retried).
 * undici asks an iterable for its next chunk only once the last one is written to the socket, so
 * it may lend its chunks (`PushSource.chunks`).
 */
export type RequestBody = Uint8Array | string | (() => Readable) | Readable | AsyncIterable<Uint8Array>;

export interface HttpRequest {
  method: HttpMethod;
  url: URL;
  headers?: Record<string, string>;
  body?: RequestBody;
  /** Repository scopes asked of the authorizer. */
  scopes: AuthScope[];
  signal?: AbortSignal;
  onRetry?: (info: RetryInfo) => void;
  /**
   * Whether failed attempts may be repeated. Default: true unless the body is a one-shot stream.
   * Upload steps that move an upload session forward pass false: the pusher restarts them itself.
   */
  retry?: boolean;
  /** Statuses handed back to the caller rather than thrown. Default: 2xx. */
  accept?: (status: number) => boolean;
  /** Follow 3xx `Location`s. Default: true for GET and HEAD. */
  followRedirects?: boolean;
  /** Send no credentials at all (foreign-layer URLs and other hosts the registry only points at). */
  noAuth?: boolean;
  /** Per-request body stall timeout (ms between body bytes); default: the client's. */
  bodyTimeoutMs?: number;
  /**
   * A large blob GET: over plain HTTP (and a client that owns its dispatcher) it is sent on a
   * connection of its own whose body can fill lent buffers (`SocketBody.readInto`). A chunked
   * answer, or a success that is not plain bytes of a known length, is asked again through
   * undici; any other answer goes through the same retry, auth and redirect logic. Default false.
   */
  socketRead?: boolean;
  /**
   * A blob GET below the socket-read size: over plain HTTP (and a client that owns its
   * dispatcher) it goes over the client's own keep-alive connections, its head parsed by ferry
   * and its body streamed as the socket delivers it (no undici parser or request machinery:
   * ~0.4 ms less CPU per request). Answers that are not plain bytes are asked again through
   * undici; all go through the same retry, auth and redirect logic. Default false.
   */
  pooledRead?: boolean;
}

export interface HttpResponse {
  status: number;
  /** The URL that answered (after redirects). */
  url: URL;
  /** True when a redirect moved the request to another origin (no credentials were sent there). */
  crossOrigin: boolean;
  body: Readable;
  header(name: string): string | undefined;
  headerAll(name: string): string[];
}

export interface HttpClientOptions {
  dispatcher?: Dispatcher;
  authorizer?: RequestAuthorizer;
  concurrencyPerHost?: number;
  retry?: RetryOptions;
  stallTimeoutMs?: number;
  userAgent?: string;
  /** Honour `HttpRequest.socketRead`. Default true; always off with a caller's `dispatcher` (a proxy must see every request). */
  socketReads?: boolean;
  /** Honour `HttpRequest.pooledRead`. Default true; always off with a caller's `dispatcher`. */
  pooledReads?: boolean;
}

interface HostState {
  limit: LimitFunction;
  /** Epoch ms before which no request to this host starts (set by 429/503 answers). */
  blockedUntil: number;
  /** Consecutive failures of any request to this host; grows everyone's backoff. */
  failures: number;
}

const MAX_REDIRECTS = 10;
const ERROR_BODY_LIMIT = 64 * 1024;

function isRetriableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status !== 501 && status !== 505);
}

/** `Retry-After` as milliseconds from now (delta-seconds or an HTTP date). */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  // Only an HTTP date is a date: Date.parse reads "1.5" or "-1" as days of 2001 (no wait at all).
  if (!/^[A-Za-z]{3,9},? /.test(v)) return undefined;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

function isReplayable(body: RequestBody | undefined): boolean {
  return body === undefined || typeof body === "string" || body instanceof Uint8Array || typeof body === "function";
}

function materialize(body: RequestBody | undefined): string | Uint8Array | Readable | AsyncIterable<Uint8Array> | undefined {
  return typeof body === "function" ? body() : body;
}

function wrapResponse(
  res: Dispatcher.ResponseData,
  url: URL,
  crossOrigin: boolean,
): HttpResponse {
  const headers = res.headers;
  // Destroying an unfinished undici body emits an AbortError; readers see errors through their
  // own iteration, so a stray one must not become an uncaught exception.
  res.body.on("error", () => {});
  return {
    status: res.statusCode,
    url,
    crossOrigin,
    body: res.body as unknown as Readable,
    header(name) {
      const v = headers[name.toLowerCase()];
      return Array.isArray(v) ? v[0] : v;
    },
    headerAll(name) {
      const v = headers[name.toLowerCase()];
      return v === undefined ? [] : Array.isArray(v) ? v : [v];
    },
  };
}

/** Discard a body without reading it into memory; never throws. */
export function discard(res: HttpResponse): void {
  const body = res.body as Readable & { dump?: (o?: { limit: number }) => Promise<void> };
  if (typeof body.dump === "function") body.dump({ limit: 128 * 1024 }).catch(() => {});
  else body.destroy();
}

export class HttpClient {
  readonly #dispatcher: Dispatcher;
  readonly #ownsDispatcher: boolean;
  readonly #authorizer: RequestAuthorizer | undefined;
  readonly #concurrency: number;
  readonly #retry: Required<RetryOptions>;
  readonly #userAgent: string;
  readonly #socketReads: boolean;
  /** Keep-alive connections for pooled reads; undefined when they are off. */
  readonly #pool: GetPool | undefined;
  readonly stallTimeoutMs: number;
  readonly #hosts = new Map<string, HostState>();

  constructor(options: HttpClientOptions = {}) {
    this.#ownsDispatcher = options.dispatcher === undefined;
    this.#dispatcher = options.dispatcher ?? new Agent({ connections: options.concurrencyPerHost ?? 8, keepAliveTimeout: 10_000 });
    this.#authorizer = options.authorizer;
    this.#concurrency = Math.max(1, options.concurrencyPerHost ?? 8);
    this.#retry = {
      maxAttempts: Math.max(1, options.retry?.maxAttempts ?? 5),
      minDelayMs: options.retry?.minDelayMs ?? 200,
      maxDelayMs: options.retry?.maxDelayMs ?? 10_000,
      maxRetryAfterMs: options.retry?.maxRetryAfterMs ?? 60_000,
    };
    this.stallTimeoutMs = options.stallTimeoutMs ?? 30_000;
    this.#userAgent = options.userAgent ?? "ferry/0.1";
    this.#socketReads = this.#ownsDispatcher && options.socketReads !== false;
    this.#pool = this.#ownsDispatcher && options.pooledReads !== false ? new GetPool({ maxIdlePerOrigin: this.#concurrency }) : undefined;
  }

  /** Close the pool when the client created it. */
  async close(): Promise<void> {
    this.#pool?.close();
    if (this.#ownsDispatcher) await this.#dispatcher.close();
  }

  #host(host: string): HostState {
    let s = this.#hosts.get(host);
    if (!s) {
      s = { limit: pLimit(this.#concurrency), blockedUntil: 0, failures: 0 };
      this.#hosts.set(host, s);
    }
    return s;
  }

  #backoff(host: HostState, attempt: number): number {
    const n = Math.max(attempt, host.failures);
    const cap = Math.min(this.#retry.maxDelayMs, this.#retry.minDelayMs * 2 ** Math.min(n - 1, 20));
    return Math.round(Math.random() * cap); // full jitter
  }

  /**
   * Send one logical request (retrying, re-authorizing and redirecting as needed). Resolves with
   * an accepted response whose body the caller must consume or {@link discard}: the host's
   * concurrency slot is held until the body closes.
   */
  async send(req: HttpRequest): Promise<HttpResponse> {
    const replayable = isReplayable(req.body);
    const mayRetry = (req.retry ?? true) && replayable;
    const accept = req.accept ?? ((s: number) => s >= 200 && s < 300);
    const follow = req.followRedirects ?? (req.method === "GET" || req.method === "HEAD");
    const origin = req.url.origin;
    let url = req.url;
    let attempt = 1;
    let redirects = 0;
    let authRetried = false;
    let bodyUsed = false;

    for (;;) {
      if (req.signal?.aborted) throw abortError(req.signal);
      const crossOrigin = url.origin !== origin;
      const state = this.#host(url.host);
      const wait = state.blockedUntil - Date.now();
      if (wait > 0) await sleep(wait, req.signal);

      const headers: Record<string, string> = { "user-agent": this.#userAgent, ...req.headers };
      // Credentials only ever go to the origin the caller addressed, never after a cross-origin redirect.
      if (this.#authorizer && !crossOrigin && !req.noAuth) {
        const auth = await this.#authorizer.authorize(url, req.scopes, req.signal);
        if (auth) headers.authorization = auth;
      }
      if (bodyUsed && !replayable) {
        throw new NetworkError(`${req.method} ${redactUrl(url)}: the request body cannot be sent twice`, {
          details: { method: req.method, url: redactUrl(url) },
        });
      }
      const body = materialize(req.body);
      bodyUsed = body !== undefined;

      let res: HttpResponse;
      try {
        const plainGet = req.method === "GET" && url.protocol === "http:" && body === undefined;
        const socket = plainGet && req.socketRead === true && this.#socketReads;
        const pooled = plainGet && !socket && req.pooledRead === true && this.#pool !== undefined;
        res =
          (socket
            ? await this.#dispatchOwn(state, url, req, headers, crossOrigin, socketGet)
            : pooled
              ? await this.#dispatchOwn(state, url, req, headers, crossOrigin, (r) => (this.#pool as GetPool).get(r))
              : undefined) ?? (await this.#dispatch(state, url, req, headers, body, crossOrigin));
      } catch (err) {
        if (req.signal?.aborted) throw abortError(req.signal);
        if (err instanceof FerryError) throw err;
        const netErr = new NetworkError(`${req.method} ${redactUrl(url)}: ${(err as Error)?.message ?? String(err)}`, {
          cause: err,
          details: { method: req.method, url: redactUrl(url), errno: (err as { code?: string })?.code },
        });
        state.failures++;
        if (!mayRetry || attempt >= this.#retry.maxAttempts) throw netErr;
        const delayMs = this.#backoff(state, attempt);
        req.onRetry?.({ attempt, delayMs, reason: netErr.message });
        await sleep(delayMs, req.signal);
        attempt++;
        continue;
      }

      const status = res.status;
      if (follow && status >= 300 && status < 400 && status !== 304 && res.header("location")) {
        discard(res);
        const next = resolveLocation(res.header("location") as string, url, `${req.method} ${redactUrl(url)}`);
        if (url.protocol === "https:" && next.protocol !== "https:") {
          throw new NetworkError(`${req.method} ${redactUrl(url)}: refusing redirect from https to ${next.protocol}`, {
            details: { method: req.method, url: redactUrl(url), status },
          });
        }
        if (++redirects > MAX_REDIRECTS) {
          throw new NetworkError(`${req.method} ${redactUrl(req.url)}: too many redirects`, {
            details: { method: req.method, url: redactUrl(req.url), status },
          });
        }
        url = next;
        continue;
      }

      if (status === 401 && !crossOrigin && !req.noAuth && this.#authorizer && !authRetried) {
        authRetried = true;
        discard(res);
        const again = await this.#authorizer.onUnauthorized(url, req.scopes, res.headerAll("www-authenticate"), req.signal, headers.authorization);
        if (again && replayable) continue;
        throw new UnauthorizedError(`${req.method} ${redactUrl(url)}: HTTP 401`, {
          details: { status, method: req.method, url: redactUrl(url), registryCodes: [], reauthorized: again },
        });
      }

      if (accept(status)) {
        if (status < 500) state.failures = 0;
        if (req.method === "HEAD") discard(res); // nothing to read; frees the slot at once
        return res;
      }

      if (isRetriableStatus(status)) {
        state.failures++;
        const retryAfter = parseRetryAfter(res.header("retry-after"));
        if (retryAfter !== undefined && retryAfter > this.#retry.maxRetryAfterMs) {
          discard(res);
          throw new TooManyRequestsError(
            `${req.method} ${redactUrl(url)}: HTTP ${status}, server asks to wait ${retryAfter} ms (over the ${this.#retry.maxRetryAfterMs} ms limit)`,
            { details: { status, method: req.method, url: redactUrl(url), retryAfterMs: retryAfter, registryCodes: [] } },
          );
        }
        if (mayRetry && attempt < this.#retry.maxAttempts) {
          discard(res);
          const delayMs = retryAfter ?? this.#backoff(state, attempt);
          // Throttling answers hold back every request to the host, not only this one.
          if (status === 429 || status === 503) state.blockedUntil = Math.max(state.blockedUntil, Date.now() + delayMs);
          req.onRetry?.({ attempt, delayMs, reason: `HTTP ${status}`, status });
          await sleep(delayMs, req.signal);
          attempt++;
          continue;
        }
      }
      throw await this.errorFor(req.method, url, res);
    }
  }

  /** The typed error for a response nobody accepted; reads (at most 64 KiB of) its body. */
  async errorFor(method: string, url: URL, res: HttpResponse): Promise<FerryError> {
    let text = "";
    // distribution answers 416 with the whole blob's Content-Length and then closes: never read it.
    if (method !== "HEAD" && res.status !== 416) {
      try {
        const chunks: Buffer[] = [];
        let n = 0;
        for await (const c of res.body as AsyncIterable<Buffer>) {
          chunks.push(c);
          n += c.byteLength;
          if (n >= ERROR_BODY_LIMIT) break;
        }
        text = Buffer.concat(chunks).toString("utf8");
      } catch {
        // the error status says enough
      }
    }
    res.body.destroy();
    const retryAfter = parseRetryAfter(res.header("retry-after"));
    return registryError({
      status: res.status,
      method,
      url: redactUrl(url),
      registryErrors: parseRegistryErrors(text),
      extra: retryAfter !== undefined ? { retryAfterMs: retryAfter } : undefined,
    });
  }

  /**
   * A GET on ferry's own connections ({@link socketGet}, or the keep-alive pool's `get`) under
   * the host's concurrency slot. Resolves undefined, slot released, when the server's answer
   * needs undici.
   */
  #dispatchOwn(
    state: HostState,
    url: URL,
    req: HttpRequest,
    headers: Record<string, string>,
    crossOrigin: boolean,
    get: (r: PooledGetRequest) => Promise<PooledResponse | undefined>,
  ): Promise<HttpResponse | undefined> {
    return this.#underSlot(state, req.signal, async () => {
      const lower: Record<string, string> = {};
      for (const [k, v] of Object.entries(headers)) lower[k.toLowerCase()] = v;
      const res = await get({ url, headers: lower, signal: req.signal, stallTimeoutMs: req.bodyTimeoutMs ?? this.stallTimeoutMs });
      return res && { status: res.status, url, crossOrigin, body: res.body, header: res.header, headerAll: res.headerAll };
    });
  }

  #dispatch(
    state: HostState,
    url: URL,
    req: HttpRequest,
    headers: Record<string, string>,
    body: string | Uint8Array | Readable | AsyncIterable<Uint8Array> | undefined,
    crossOrigin: boolean,
  ): Promise<HttpResponse> {
    return this.#underSlot(state, req.signal, async () => {
      let res: Dispatcher.ResponseData;
      try {
        res = await request(url, {
          method: req.method,
          headers,
          // undici sends async iterables too; its typings omit them.
          body: (body ?? null) as Dispatcher.RequestOptions["body"],
          signal: req.signal,
          dispatcher: this.#dispatcher,
          bodyTimeout: req.bodyTimeoutMs ?? this.stallTimeoutMs,
          headersTimeout: headTimeoutMs(this.stallTimeoutMs),
        });
      } catch (err) {
        if (body && typeof (body as Readable).destroy === "function") (body as Readable).destroy();
        // An async generator that was started runs its `finally` (closes its file).
        else if (body && typeof (body as AsyncGenerator).return === "function") void (body as AsyncGenerator).return(undefined).catch(() => undefined);
        throw err;
      }
      return wrapResponse(res, url, crossOrigin);
    });
  }

  /**
   * Run `open` in one of the host's concurrency slots and hold the slot until the response body
   * is consumed or destroyed (released at once when `open` fails or answers undefined). A caller
   * waiting for a slot can give up (abort) without waiting for it.
   */
  #underSlot<R extends HttpResponse | undefined>(state: HostState, signal: AbortSignal | undefined, open: () => Promise<R>): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const onAbort = () => reject(abortError(signal as AbortSignal));
      signal?.addEventListener("abort", onAbort, { once: true });
      void state.limit(async () => {
        signal?.removeEventListener("abort", onAbort);
        if (signal?.aborted) return reject(abortError(signal));
        let res: R;
        try {
          res = await open();
        } catch (err) {
          return reject(err);
        }
        const body = res?.body;
        const done = new Promise<void>((release) => {
          if (body === undefined || body.closed || body.destroyed) release();
          else body.once("close", () => release());
        });
        resolve(res);
        await done;
      });
    });
  }
}
