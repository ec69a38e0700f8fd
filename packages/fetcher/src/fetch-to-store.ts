/**
 * Fetch one blob into a content store's ingest, resuming from what the ingest already holds.
 * Large blobs may be fetched with several ranged GETs in flight, written in order; a server that
 * ignores Range makes it drop to one serial stream.
 */
import {
  copyBlob,
  ingestRef,
  openWriter,
  type CopyBlobOutcome,
  type Descriptor,
  type Fetcher,
  type Ingester,
  type IngestManager,
  type TransferHooks,
  type Writer,
} from "@ferry/core";
import { rangesInOrder, RangeIgnored, type ParallelRangeOptions } from "./parallel-ranges.ts";
import type { RangeOpener } from "./read-seeker.ts";
import { RegistryFetcher } from "./fetcher.ts";

export interface FetchToStoreOptions extends TransferHooks {
  signal?: AbortSignal;
  /** Ingest key. Default: core's `ingestRef(desc)` (`layer-<digest>`, …), stable across runs. */
  ref?: string;
  /** Called with the ingest offset as bytes are written. */
  onProgress?(offset: number): void;
  /** Use parallel ranges for blobs at least this large. Default: the resolver's `parallelRangeThreshold`. */
  parallelRangeThreshold?: number;
  /** Bytes per range. Default: the resolver's `rangeChunkSize` (16 MiB). */
  rangeChunkSize?: number;
  /** Ranges in flight. Default: the resolver's `parallelRanges` (4). */
  parallelRanges?: number;
  /** Labels to commit with. */
  labels?: Record<string, string>;
}

/**
 * Fetch `desc` into `ingester` under a stable ingest ref. An interrupted call (abort, crash,
 * network failure) leaves the ingest in place and the next call resumes from its offset; the
 * store verifies size and digest at commit. Resolves `"exists"` when the store already had it.
 */
export async function fetchToStore(fetcher: Fetcher, desc: Descriptor, ingester: Ingester, options: FetchToStoreOptions = {}): Promise<CopyBlobOutcome> {
  const ref = options.ref ?? ingestRef(desc);
  try {
    return await fetchOnce(fetcher, desc, ingester, ref, options);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code !== "DigestMismatch" && code !== "SizeMismatch") throw err;
    // The ingest holds bad bytes (corrupted in flight, or by an earlier run): drop it so nothing
    // wrong can ever be committed, then try once more from zero.
    const abort = (ingester as Partial<IngestManager>).abort;
    if (typeof abort !== "function") throw err;
    await abort.call(ingester, ref).catch(() => {});
    if (options.signal?.aborted) throw err;
    try {
      return await fetchOnce(fetcher, desc, ingester, ref, options);
    } catch (again) {
      const c = (again as { code?: string }).code;
      if (c === "DigestMismatch" || c === "SizeMismatch") await abort.call(ingester, ref).catch(() => {});
      throw again;
    }
  }
}

async function fetchOnce(fetcher: Fetcher, desc: Descriptor, ingester: Ingester, ref: string, options: FetchToStoreOptions): Promise<CopyBlobOutcome> {
  const { signal, onRetry, onReconnect, onProgress } = options;
  let writer: Writer;
  try {
    writer = await openWriter(ingester, { ref, total: desc.size, expected: desc.digest, signal });
  } catch (err) {
    if ((err as { code?: string }).code === "AlreadyExists") return "exists";
    throw err;
  }
  const parallel = fetcher instanceof RegistryFetcher ? fetcher.parallelSettings(options) : undefined;
  if (fetcher instanceof RegistryFetcher && parallel && desc.size >= parallel.threshold) {
    try {
      // False means Range was ignored: the serial copy below takes over (restarting from 0 if needed).
      // Through undici, as fetch()'s parallel ranges (see RegistryFetcher.fetch).
      await parallelInto(writer, fetcher.opener(desc, false), desc, { ...parallel, signal, onRetry, onReconnect, onProgress });
    } catch (err) {
      await writer.close();
      throw err;
    }
  }
  // The writer was opened with the expected digest and commit checks it: no need to hash twice.
  // Parallel ranges were tried above with this call's settings (or are off for it).
  const open = (offset: number) =>
    fetcher instanceof RegistryFetcher
      ? fetcher.fetch(desc, { offset, signal, onRetry, onReconnect, verify: false, parallel: false })
      : fetcher.fetch(desc, { offset, signal, onRetry, onReconnect });
  return copyBlob(writer, open, {
    size: desc.size,
    expected: desc.digest,
    signal,
    onProgress,
    labels: options.labels,
  });
}

interface ParallelOptions extends ParallelRangeOptions {
  onProgress?(offset: number): void;
}

/**
 * Fill `writer` from its current offset to the end with up to `ranges` ranged GETs in flight,
 * each buffered (at most `ranges × chunkSize` bytes in memory) and written in order. Returns
 * false as soon as the server answers a range with the whole blob.
 */
async function parallelInto(writer: Writer, open: RangeOpener, desc: Descriptor, opts: ParallelOptions): Promise<boolean> {
  let written = (await writer.status()).offset;
  try {
    for await (const parts of rangesInOrder(open, desc, written, opts)) {
      for (const c of parts) {
        await writer.write(c);
        written += c.byteLength;
      }
      opts.onProgress?.(written);
    }
    return true;
  } catch (err) {
    if (err instanceof RangeIgnored) return false;
    throw err;
  }
}
