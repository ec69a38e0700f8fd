/**
 * One blob fetched as several ranged GETs in flight, handed on in order. Each range is buffered
 * whole before it is handed on, so at most `ranges × chunkSize` bytes wait in memory. Used by
 * `fetchToStore` (into a writer) and by `RegistryFetcher.fetch` (as one ordered stream, so that
 * `pull` and `copy` use the same setting).
 */
import { Readable } from "node:stream";
import {
  abortError,
  createDigester,
  DigestMismatchError,
  digestAlgorithm,
  NetworkError,
  SizeMismatchError,
  type Descriptor,
  type FetchStream,
  type TransferHooks,
} from "@ferry/core";
import { discard } from "./http-client.ts";
import { RangeReadable, type RangeOpener } from "./read-seeker.ts";

export interface ParallelRangeOptions extends TransferHooks {
  chunkSize: number;
  ranges: number;
  signal?: AbortSignal;
}

/** Thrown by {@link rangesInOrder} when the server answers a range with the whole blob. */
export class RangeIgnored extends Error {
  /** Which range: the first one, or a later one (a server that changed its mind). */
  readonly first: boolean;
  constructor(first: boolean) {
    super("the server ignored Range");
    this.first = first;
  }
}

/**
 * The bytes of `desc` from `start` to its end, as the chunks of one range at a time, in order.
 * Throws {@link RangeIgnored} as soon as a range is answered with the whole blob.
 */
export async function* rangesInOrder(open: RangeOpener, desc: Descriptor, start: number, opts: ParallelRangeOptions): AsyncGenerator<Uint8Array[]> {
  if (start >= desc.size) return;
  const inner = new AbortController();
  const onAbort = () => inner.abort(opts.signal?.reason);
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  const hooks: TransferHooks = { onRetry: opts.onRetry, onReconnect: opts.onReconnect };

  const fetchRange = async (s: number, e: number): Promise<Uint8Array[]> => {
    const first = await open(s, e, inner.signal, hooks);
    if (first.status === 200 && (s > 0 || e < desc.size)) {
      discard(first);
      throw new RangeIgnored(s === start);
    }
    const parts: Uint8Array[] = [];
    for await (const c of new RangeReadable(open, { start: s, end: e, first, blobSize: desc.size, signal: inner.signal, ...hooks })) parts.push(c as Uint8Array);
    return parts;
  };

  const queue: Array<Promise<Uint8Array[]>> = [];
  let next = start;
  try {
    for (;;) {
      while (queue.length < opts.ranges && next < desc.size) {
        const e = Math.min(desc.size, next + opts.chunkSize);
        const p = fetchRange(next, e);
        p.catch(() => {}); // observed below, in order
        queue.push(p);
        next = e;
      }
      const head = queue.shift();
      if (!head) return;
      const parts = await head;
      yield parts;
      // The consumer is done with this range (it asked for the next one): let its bytes go
      // before the queue refills, or ranges + 1 of them would be held.
      parts.length = 0;
    }
  } catch (err) {
    if (opts.signal?.aborted) throw abortError(opts.signal);
    throw err;
  } finally {
    inner.abort();
    opts.signal?.removeEventListener("abort", onAbort);
  }
}

/**
 * {@link rangesInOrder} as one stream of the blob from `start`, hashed and size-checked at its
 * end when `verify` (from 0 only). Resolves `undefined` when the server ignores Range on the first
 * range, so the caller can fall back to one plain GET; a later range answered whole fails the stream.
 */
export async function parallelStream(open: RangeOpener, desc: Descriptor, start: number, opts: ParallelRangeOptions & { verify: boolean }): Promise<FetchStream | undefined> {
  // Destroying the stream must stop the ranged GETs in flight: ending the generator does not
  // while it waits on one (or has not started), and they would hold the host's slots.
  const stop = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, stop.signal]) : stop.signal;
  const ranges = rangesInOrder(open, desc, start, { ...opts, signal });
  let head: IteratorResult<Uint8Array[]>;
  try {
    head = await ranges.next();
  } catch (err) {
    stop.abort();
    if (err instanceof RangeIgnored) return undefined;
    throw err;
  }
  const digester = opts.verify && start === 0 ? createDigester(digestAlgorithm(desc.digest)) : undefined;
  async function* bytes(): AsyncGenerator<Uint8Array> {
    let pos = start;
    try {
      for (let r = head; !r.done; r = await ranges.next()) {
        for (const c of r.value) {
          digester?.update(c);
          pos += c.byteLength;
          yield c;
        }
      }
    } catch (err) {
      if (err instanceof RangeIgnored) throw new NetworkError(`the registry answered a later range of ${desc.digest} with the whole blob`);
      throw err;
    } finally {
      await ranges.return(undefined);
    }
    if (pos !== desc.size) {
      throw new SizeMismatchError(`blob ${desc.digest}: got ${pos} bytes, expected ${desc.size}`, { details: { digest: desc.digest, expected: desc.size, actual: pos } });
    }
    const got = digester?.digest();
    if (got !== undefined && got !== desc.digest) {
      throw new DigestMismatchError(`blob content hashes to ${got}, expected ${desc.digest}`, { details: { expected: desc.digest, actual: got } });
    }
  }
  const stream = Readable.from(bytes(), { objectMode: false });
  // At destroy itself: its 'close' waits for the generator, which waits on the range in flight.
  const destroy = stream._destroy.bind(stream);
  stream._destroy = (err, cb) => {
    stop.abort();
    destroy(err, cb);
  };
  stream.once("end", () => stop.abort());
  return stream;
}
