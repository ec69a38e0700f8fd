/**
 * An HTTP read-seeker: random access to one blob over ranged GETs. It opens lazily with a closed
 * range `bytes=N-(end-1)` (whether or not the server advertises `Accept-Ranges`), checks that
 * `Content-Range` starts where it asked, copes with servers that ignore Range (a 200: leading bytes
 * are discarded and `rangeIgnored` is set), and reopens at the offset reached after a dropped
 * connection, an unexpected EOF or a stall, giving up after a few reopens that made no progress.
 */
import { Readable } from "node:stream";
import {
  abortError,
  createDigester,
  DigestMismatchError,
  digestAlgorithm,
  FerryError,
  NetworkError,
  prematureClose,
  SizeMismatchError,
  type Digest,
  type Digester,
  type ReaderAt,
  type TransferHooks,
} from "@ferry/core";
import { discard, type HttpResponse } from "./http-client.ts";
import { redactUrl } from "./registry-error.ts";
import { isSocketBody, type SocketBody } from "./socket-body.ts";

/** Opens the blob at `[start, end)`; resolves with a 200 or 206 response. */
export type RangeOpener = (start: number, end: number, signal: AbortSignal | undefined, hooks: TransferHooks) => Promise<HttpResponse>;

/** Reopens without progress tolerated before a read fails. */
export const MAX_REOPENS_WITHOUT_PROGRESS = 3;

export interface RangeStreamOptions extends TransferHooks {
  start: number;
  end: number;
  signal?: AbortSignal;
  /** A response already opened at `start` (by `fetch`, to learn `rangeIgnored` up front). */
  first?: HttpResponse;
  /** Verify size and digest at the end (only meaningful when the stream covers the whole blob). */
  verify?: { digest: Digest; size: number };
  /** The blob's size: a 200's Content-Length must equal it. Default: `verify.size` when given. */
  blobSize?: number;
  /** Called once when a server answers a ranged GET with the whole blob. */
  onRangeIgnored?: () => void;
}

/** `bytes a-b/total` → a, b, total (total may be `*`). */
export function parseContentRange(value: string | undefined): { start: number; end: number; total?: number } | undefined {
  if (!value) return undefined;
  const m = /^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/i.exec(value.trim());
  if (!m) return undefined;
  return { start: Number(m[1]), end: Number(m[2]), total: m[3] === "*" ? undefined : Number(m[3]) };
}

function isTransient(err: unknown): boolean {
  // Typed errors are verdicts (404, size mismatch…); everything else is the wire failing.
  return !(err instanceof FerryError) || err.code === "Network" || err.code === "Unavailable";
}

/**
 * The bytes `[start, end)` of a blob as a byte stream, reconnecting as needed. When `verify` is
 * given the size and digest are checked as the bytes pass and the stream fails with
 * `SizeMismatch`/`DigestMismatch` at its end instead of ending.
 *
 * Written as a Readable driven by the response's `data` events (pausing it on backpressure)
 * rather than an async generator: this path carries every blob byte, and the event flow costs
 * far fewer promise hops per chunk. A consumer that lends its own memory calls
 * {@link RangeReadable.readInto} instead: a socket-read body (`HttpRequest.socketRead`) then
 * fills the lent buffer directly, and any other body is copied into it.
 */
export class RangeReadable extends Readable {
  readonly #open: RangeOpener;
  readonly #opts: RangeStreamOptions;
  readonly #end: number;
  readonly #digester: Digester | undefined;
  #pos: number;
  #first: HttpResponse | undefined;
  #body: Readable | undefined;
  #opening = false;
  #openSeq = 0;
  #stuck = 0;
  #ignoredReported = false;
  #onAbort: (() => void) | undefined;
  /** A socket-read body kept for `readInto` (no listeners yet), with the offset it started at. */
  #direct: { body: SocketBody; res: HttpResponse; at: number } | undefined;
  /** Set once the Readable side is read: bodies are then always attached as events. */
  #eventMode = false;
  #readingInto = false;
  #finished = false;
  #openingDone: Promise<void> = Promise.resolve();

  constructor(open: RangeOpener, opts: RangeStreamOptions) {
    super({ highWaterMark: 1 << 20 });
    this.#open = open;
    this.#opts = opts;
    this.#pos = opts.start;
    this.#end = opts.end;
    this.#first = opts.first;
    this.#digester = opts.verify ? createDigester(digestAlgorithm(opts.verify.digest)) : undefined;
    const signal = opts.signal;
    if (signal) {
      this.#onAbort = () => this.destroy(abortError(signal));
      if (signal.aborted) queueMicrotask(this.#onAbort);
      else signal.addEventListener("abort", this.#onAbort, { once: true });
    }
  }

  override _read(): void {
    this.#eventMode = true;
    const direct = this.#direct;
    if (direct) {
      this.#direct = undefined;
      this.#attach(direct.res, 0, direct.at);
    }
    if (this.#body) this.#body.resume();
    else if (!this.#opening) void this.#next();
  }

  /**
   * Fill `buf` with the next bytes: resolves with the count (0 only at the end, after
   * verification). Reconnects like the stream does. Do not mix with reading the stream.
   */
  async readInto(buf: Uint8Array): Promise<number> {
    if (!this.#readingInto) {
      // Failures reach this reader as rejections; an 'error' event nobody listens to would crash.
      this.#readingInto = true;
      this.on("error", () => {});
    }
    for (;;) {
      // Ended (and then auto-destroyed) after the last chunk was copied out: the end, not a failure.
      if (this.readableEnded) return 0;
      if (this.destroyed) throw this.errored ?? prematureClose();
      if (this.#pos >= this.#end && this.readableLength === 0) {
        if (!this.#finished) this.#finish();
        if (this.destroyed) throw this.errored ?? prematureClose();
        return 0;
      }
      if (this.#opening) {
        await this.#openingDone;
        continue;
      }
      const direct = this.#direct;
      if (direct === undefined) {
        if (this.#body === undefined && this.readableLength === 0 && !this.#finished) {
          await this.#next();
          continue;
        }
        return this.#copyInto(buf);
      }
      const at = this.#pos;
      let n: number;
      try {
        n = await direct.body.readInto(buf.byteLength <= this.#end - at ? buf : buf.subarray(0, this.#end - at));
        if (n === 0) throw new NetworkError(`GET ${redactUrl(direct.res.url)}: connection ended at byte ${at} of ${this.#end}`);
      } catch (err) {
        if (this.#direct === direct) {
          this.#direct = undefined;
          direct.body.destroy();
        }
        this.#failed(err, direct.at);
        continue;
      }
      this.#pos += n;
      this.#digester?.update(n === buf.byteLength ? buf : buf.subarray(0, n));
      if (this.#pos >= this.#end) {
        this.#direct = undefined;
        direct.body.destroy();
      }
      return n;
    }
  }

  /** `readInto` over bytes that arrive as stream chunks (a copy). */
  async #copyInto(buf: Uint8Array): Promise<number> {
    for (;;) {
      const chunk = this.read() as Buffer | null;
      if (chunk !== null) {
        const n = Math.min(chunk.byteLength, buf.byteLength);
        buf.set(n === chunk.byteLength ? chunk : chunk.subarray(0, n));
        if (n < chunk.byteLength) this.unshift(chunk.subarray(n));
        return n;
      }
      if (this.readableEnded || (this.#finished && this.readableLength === 0)) return 0;
      if (this.destroyed) throw this.errored ?? prematureClose();
      await new Promise<void>((resolve) => {
        const done = () => {
          this.off("readable", done);
          this.off("end", done);
          this.off("close", done);
          resolve();
        };
        this.on("readable", done);
        this.on("end", done);
        this.on("close", done);
      });
    }
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#direct?.body.destroy();
    this.#direct = undefined;
    this.#detach();
    this.#first?.body.destroy();
    if (this.#onAbort) this.#opts.signal?.removeEventListener("abort", this.#onAbort);
    cb(err);
  }

  /** Stop listening to the current body; drain it when little is left (keeps the connection alive), else destroy it. */
  #detach(drain = false): void {
    const body = this.#body;
    this.#body = undefined;
    if (body) {
      body.removeAllListeners("data");
      body.removeAllListeners("end");
      body.on("error", () => {});
      if (drain && !body.destroyed) body.resume();
      else if (!body.destroyed) body.destroy();
    }
  }

  async #next(): Promise<void> {
    if (this.destroyed) return;
    if (this.#pos >= this.#end) return this.#finish();
    this.#opening = true;
    // A failure below reconnects from inside this call (#failed → #next): the flag is then that
    // call's, and must stay up until it is done.
    const seq = ++this.#openSeq;
    let opened!: () => void;
    this.#openingDone = new Promise<void>((resolve) => (opened = resolve));
    const at = this.#pos;
    let res = this.#first;
    this.#first = undefined;
    try {
      if (!res) res = await this.#open(at, this.#end, this.#opts.signal, this.#opts);
      if (this.destroyed) {
        res.body.destroy();
        return;
      }
      const skip = this.#positionOf(res, at);
      this.#attach(res, skip, at);
    } catch (err) {
      this.#failed(err, at);
    } finally {
      if (this.#openSeq === seq) this.#opening = false;
      opened();
    }
  }

  /** Validate a response opened at `at`; returns the bytes to skip before `at`. */
  #positionOf(res: HttpResponse, at: number): number {
    const verify = this.#opts.verify;
    if (res.status === 206) {
      const cr = parseContentRange(res.header("content-range"));
      if (!cr || cr.start > at) {
        discard(res);
        throw new FerryError("Registry", `GET ${redactUrl(res.url)}: Content-Range ${JSON.stringify(res.header("content-range") ?? "")} does not start at ${at}`, {
          details: { status: 206, url: redactUrl(res.url), offset: at },
        });
      }
      return at - cr.start;
    }
    // 200: the whole blob from byte 0, whatever we asked for.
    if (at > 0 && !this.#ignoredReported) {
      this.#ignoredReported = true;
      this.#opts.onRangeIgnored?.();
    }
    const len = res.header("content-length");
    const size = this.#opts.blobSize ?? verify?.size;
    if (len !== undefined && size !== undefined && Number(len) !== size) {
      discard(res);
      throw new SizeMismatchError(`GET ${redactUrl(res.url)}: Content-Length ${len} but the descriptor says ${size}`, {
        details: { expected: size, actual: Number(len), url: redactUrl(res.url) },
      });
    }
    return at;
  }

  #attach(res: HttpResponse, skipBytes: number, at: number): void {
    if (skipBytes === 0 && !this.#eventMode && isSocketBody(res.body)) {
      // Left unread until the consumer says how: readInto fills its buffers, _read attaches events.
      this.#direct = { body: res.body, res, at };
      return;
    }
    let skip = skipBytes;
    const body = res.body;
    if (body.destroyed) {
      // Failed or closed before anything listened (bad framing in the bytes that came with the
      // head; a connection cut between opening and the first read): its events went by unseen.
      this.#failed(body.errored ?? new NetworkError(`GET ${redactUrl(res.url)}: connection closed before the body was read`), at);
      return;
    }
    const declared = Number(res.header("content-length") ?? Number.NaN);
    let received = 0;
    this.#body = body;
    body.on("data", (raw: Buffer) => {
      received += raw.byteLength;
      let chunk = raw;
      if (skip > 0) {
        if (chunk.byteLength <= skip) {
          skip -= chunk.byteLength;
          return;
        }
        chunk = chunk.subarray(skip);
        skip = 0;
      }
      const left = this.#end - this.#pos;
      if (chunk.byteLength > left) chunk = chunk.subarray(0, left);
      this.#pos += chunk.byteLength;
      this.#digester?.update(chunk);
      const more = this.push(chunk);
      if (this.#pos >= this.#end) {
        this.#detach(declared - received <= 64 * 1024);
        this.#finish();
      } else if (!more) body.pause();
    });
    body.once("end", () => {
      if (this.#body !== body) return;
      this.#detach();
      this.#failed(new NetworkError(`GET ${redactUrl(res.url)}: connection ended at byte ${this.#pos} of ${this.#end}`), at);
    });
    body.once("error", (err: Error) => {
      if (this.#body !== body) return;
      this.#detach();
      this.#failed(err, at);
    });
  }

  /** A response failed after starting at `at`: reconnect at the offset reached, or give up. */
  #failed(err: unknown, at: number): void {
    if (this.destroyed) return;
    const signal = this.#opts.signal;
    if (signal?.aborted) return void this.destroy(abortError(signal));
    if (!isTransient(err)) return void this.destroy(err as Error);
    this.#stuck = this.#pos > at ? 0 : this.#stuck + 1;
    if (this.#stuck > MAX_REOPENS_WITHOUT_PROGRESS) {
      this.destroy(
        new NetworkError(`giving up at byte ${this.#pos} of ${this.#end} after ${MAX_REOPENS_WITHOUT_PROGRESS} reopens without progress`, {
          cause: err,
          details: { offset: this.#pos, end: this.#end },
        }),
      );
      return;
    }
    this.#opts.onReconnect?.(this.#pos);
    void this.#next();
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    const verify = this.#opts.verify;
    if (verify && this.#digester) {
      if (this.#pos !== verify.size) {
        return void this.destroy(
          new SizeMismatchError(`blob ${verify.digest}: got ${this.#pos} bytes, expected ${verify.size}`, {
            details: { digest: verify.digest, expected: verify.size, actual: this.#pos },
          }),
        );
      }
      const got = this.#digester.digest();
      if (got !== verify.digest) {
        return void this.destroy(
          new DigestMismatchError(`blob content hashes to ${got}, expected ${verify.digest}`, {
            details: { expected: verify.digest, actual: got },
          }),
        );
      }
    }
    this.push(null);
  }
}


export interface HttpReadSeekerOptions extends TransferHooks {
  size: number;
  open: RangeOpener;
  /** Aborts every read of this read-seeker (a stream may also bring its own). */
  signal?: AbortSignal;
}

/** {@link ReaderAt} over HTTP ranges. Nothing is requested until the first read. */
export class HttpReadSeeker implements ReaderAt {
  readonly size: number;
  /** True once the server answered a ranged GET with the whole blob (the discarded bytes cost a download). */
  rangeIgnored = false;
  readonly #open: RangeOpener;
  readonly #hooks: TransferHooks;
  readonly #signal: AbortSignal | undefined;
  #closed = false;

  constructor(options: HttpReadSeekerOptions) {
    this.size = options.size;
    this.#open = options.open;
    this.#hooks = { onRetry: options.onRetry, onReconnect: options.onReconnect };
    this.#signal = options.signal;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const end = Math.min(this.size, offset + Math.max(0, length));
    if (offset >= end) return new Uint8Array(0);
    const out = new Uint8Array(end - offset);
    let n = 0;
    for await (const c of this.#chunks(offset, end, this.#signal)) {
      out.set(c, n);
      n += c.byteLength;
    }
    return n === out.byteLength ? out : out.subarray(0, n);
  }

  createReadStream(options: { offset?: number; end?: number; signal?: AbortSignal } = {}): Readable {
    const start = Math.max(0, options.offset ?? 0);
    const end = Math.min(this.size, options.end ?? this.size);
    if (start >= end) return Readable.from([], { objectMode: false });
    const signal = options.signal && this.#signal ? AbortSignal.any([options.signal, this.#signal]) : (options.signal ?? this.#signal);
    return this.#chunks(start, end, signal);
  }

  #chunks(start: number, end: number, signal: AbortSignal | undefined): RangeReadable {
    if (this.#closed) throw new FerryError("FailedPrecondition", "read-seeker is closed");
    return new RangeReadable(this.#open, {
      start,
      end,
      signal,
      blobSize: this.size,
      ...this.#hooks,
      onRangeIgnored: () => {
        this.rangeIgnored = true;
      },
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
  }
}
