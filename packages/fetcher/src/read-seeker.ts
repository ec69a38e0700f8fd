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
  SizeMismatchError,
  type Digest,
  type ReaderAt,
  type TransferHooks,
} from "@ferry/core";
import { discard, type HttpResponse } from "./http-client.ts";
import { redactUrl } from "./registry-error.ts";

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
 * The bytes `[start, end)` of a blob as an async iterable, reconnecting as needed. When
 * `verify` is given the size and digest are checked as the bytes pass and the iterable throws
 * `SizeMismatch`/`DigestMismatch` at its end.
 */
export async function* rangeChunks(open: RangeOpener, opts: RangeStreamOptions): AsyncGenerator<Uint8Array> {
  const { end, signal } = opts;
  let pos = opts.start;
  const digester = opts.verify ? createDigester(digestAlgorithm(opts.verify.digest)) : undefined;
  let stuck = 0;
  let first = opts.first;
  let lastError: unknown;
  let ignoredReported = false;

  while (pos < end) {
    if (signal?.aborted) throw abortError(signal);
    const at = pos;
    let res: HttpResponse | undefined = first;
    first = undefined;
    try {
      if (!res) res = await open(pos, end, signal, opts);
      let skip = 0;
      if (res.status === 206) {
        const cr = parseContentRange(res.header("content-range"));
        if (!cr || cr.start > pos) {
          discard(res);
          throw new FerryError("Registry", `GET ${redactUrl(res.url)}: Content-Range ${JSON.stringify(res.header("content-range") ?? "")} does not start at ${pos}`, {
            details: { status: 206, url: redactUrl(res.url), offset: pos },
          });
        }
        skip = pos - cr.start;
      } else {
        // 200: the whole blob from byte 0, whatever we asked for.
        if (pos > 0 && !ignoredReported) {
          ignoredReported = true;
          opts.onRangeIgnored?.();
        }
        skip = pos;
      }
      const len = res.header("content-length");
      if (len !== undefined && res.status === 200 && opts.verify && Number(len) !== opts.verify.size) {
        discard(res);
        throw new SizeMismatchError(`GET ${redactUrl(res.url)}: Content-Length ${len} but the descriptor says ${opts.verify.size}`, {
          details: { expected: opts.verify.size, actual: Number(len), url: redactUrl(res.url) },
        });
      }
      const body = res.body;
      try {
        for await (const raw of body as AsyncIterable<Uint8Array>) {
          let chunk = raw;
          if (skip > 0) {
            if (chunk.byteLength <= skip) {
              skip -= chunk.byteLength;
              continue;
            }
            chunk = chunk.subarray(skip);
            skip = 0;
          }
          if (chunk.byteLength > end - pos) chunk = chunk.subarray(0, end - pos);
          pos += chunk.byteLength;
          digester?.update(chunk);
          yield chunk;
          if (pos >= end) break;
        }
      } finally {
        if (!body.destroyed) body.destroy();
      }
      if (pos < end) lastError = new NetworkError(`GET ${redactUrl(res.url)}: connection ended at byte ${pos} of ${end}`);
    } catch (err) {
      if (signal?.aborted) throw abortError(signal);
      if (!isTransient(err)) throw err;
      lastError = err;
    }
    if (pos >= end) break;
    stuck = pos > at ? 0 : stuck + 1;
    if (stuck > MAX_REOPENS_WITHOUT_PROGRESS) {
      throw new NetworkError(`giving up at byte ${pos} of ${end} after ${MAX_REOPENS_WITHOUT_PROGRESS} reopens without progress`, {
        cause: lastError,
        details: { offset: pos, end },
      });
    }
    opts.onReconnect?.(pos);
  }

  if (opts.verify && digester) {
    if (pos !== opts.verify.size) {
      throw new SizeMismatchError(`blob ${opts.verify.digest}: got ${pos} bytes, expected ${opts.verify.size}`, {
        details: { digest: opts.verify.digest, expected: opts.verify.size, actual: pos },
      });
    }
    const got = digester.digest();
    if (got !== opts.verify.digest) {
      throw new DigestMismatchError(`blob content hashes to ${got}, expected ${opts.verify.digest}`, {
        details: { expected: opts.verify.digest, actual: got },
      });
    }
  }
}

/** A Readable of Uint8Array chunks from an async iterable (byte mode, not object mode). */
export function byteStream(source: AsyncIterable<Uint8Array>): Readable {
  return Readable.from(source, { objectMode: false, highWaterMark: 1 << 20 });
}

export interface HttpReadSeekerOptions extends TransferHooks {
  size: number;
  open: RangeOpener;
}

/** {@link ReaderAt} over HTTP ranges. Nothing is requested until the first read. */
export class HttpReadSeeker implements ReaderAt {
  readonly size: number;
  /** True once the server answered a ranged GET with the whole blob (the discarded bytes cost a download). */
  rangeIgnored = false;
  readonly #open: RangeOpener;
  readonly #hooks: TransferHooks;
  #closed = false;

  constructor(options: HttpReadSeekerOptions) {
    this.size = options.size;
    this.#open = options.open;
    this.#hooks = { onRetry: options.onRetry, onReconnect: options.onReconnect };
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const end = Math.min(this.size, offset + Math.max(0, length));
    if (offset >= end) return new Uint8Array(0);
    const out = new Uint8Array(end - offset);
    let n = 0;
    for await (const c of this.#chunks(offset, end, undefined)) {
      out.set(c, n);
      n += c.byteLength;
    }
    return n === out.byteLength ? out : out.subarray(0, n);
  }

  createReadStream(options: { offset?: number; end?: number; signal?: AbortSignal } = {}): Readable {
    const start = Math.max(0, options.offset ?? 0);
    const end = Math.min(this.size, options.end ?? this.size);
    if (start >= end) return Readable.from([], { objectMode: false });
    return byteStream(this.#chunks(start, end, options.signal));
  }

  #chunks(start: number, end: number, signal: AbortSignal | undefined): AsyncGenerator<Uint8Array> {
    if (this.#closed) throw new FerryError("FailedPrecondition", "read-seeker is closed");
    return rangeChunks(this.#open, {
      start,
      end,
      signal,
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
