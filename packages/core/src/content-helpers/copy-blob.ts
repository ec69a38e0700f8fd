import type { Readable } from "node:stream";
import type { CommitOptions, Writer } from "../content.ts";
import type { Digest } from "../digest.ts";
import { abortError, isAlreadyExists, SizeMismatchError, throwIfAborted } from "../errors.ts";
import { type BlobSource, type ByteStream, isReaderAt } from "./blob-source.ts";

export type CopyBlobOutcome = "written" | "exists";

export interface CopyBlobOptions extends CommitOptions {
  /** Expected size; checked at commit. Default: unchecked (0 also means unknown). */
  size?: number;
  /** Expected digest; checked at commit. Default: only the digest the writer was opened with. */
  expected?: Digest;
  signal?: AbortSignal;
  /** Called after every chunk with the ingest offset (bytes now in the writer). */
  onProgress?(offset: number): void;
}

/**
 * Copy `source` into `writer` and commit it, in the manner of containerd's `content.Copy`: when the
 * writer already holds bytes (a resumed ingest) the source is positioned at that offset by
 * read-at or seek, or else read and discarded up to it; a source that reports it could not seek
 * makes the writer start over (`truncate(0)`). `AlreadyExists` at commit counts as success.
 * The writer is always closed when this returns or throws. Resolves to `"exists"` when the
 * commit found the content already there, else `"written"`.
 */
export async function copyBlob(writer: Writer, source: BlobSource, options: CopyBlobOptions = {}): Promise<CopyBlobOutcome> {
  const { signal, size, expected, onProgress, ...commitOptions } = options;
  try {
    throwIfAborted(signal);
    let offset = (await writer.status()).offset;
    if (size !== undefined && size > 0 && offset > size) {
      // More data than the blob can have: the ingest is garbage, start again.
      await writer.truncate(0);
      offset = 0;
    }
    // All bytes already there (e.g. interrupted just before commit): do not open the source at
    // all; a registry would answer a Range starting at the blob's end with 416.
    const complete = size !== undefined && size > 0 && offset === size;
    if (!complete) {
      const stream = await openAt(source, offset, signal);
      if (offset > 0 && stream.rangeIgnored) {
        await writer.truncate(0);
        offset = 0;
      }
      try {
        offset = await pump(stream, writer, offset, size !== undefined && size > 0 ? size : undefined, signal, onProgress);
      } finally {
        stream.destroy?.();
      }
    }
    if (size !== undefined && size > 0 && offset < size) {
      throw new SizeMismatchError(`source of ${writer.ref} ended at byte ${offset} of ${size}`, {
        details: { ref: writer.ref, offset, size },
      });
    }
    try {
      // A size of 0 means "unknown" here (containerd's convention); the digest still guards it.
      await writer.commit(size === 0 ? undefined : size, expected, commitOptions);
      return "written";
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
      return "exists";
    }
  } finally {
    await writer.close();
  }
}

/** Position `source` at `offset`: read-at or seek when it can, else discard the leading bytes. */
async function openAt(source: BlobSource, offset: number, signal: AbortSignal | undefined): Promise<ByteStream> {
  if (isReaderAt(source)) {
    return source.createReadStream({ offset: Math.min(offset, source.size), signal }) as ByteStream;
  }
  if (typeof source === "function") return (await source(offset)) as ByteStream;
  if (isOpenable(source)) return (await source.open(offset)) as ByteStream;
  const stream = source as ByteStream;
  if (offset > 0) return discard(stream, offset, signal);
  return stream;
}

function isOpenable(source: BlobSource): source is { open(offset?: number): Readable | ByteStream } {
  return typeof (source as { open?: unknown }).open === "function" && !(Symbol.asyncIterator in (source as object));
}

/** Skip `count` bytes of a one-shot stream, yielding the rest (splitting a chunk without copying). */
function discard(stream: ByteStream, count: number, signal: AbortSignal | undefined): ByteStream {
  async function* rest(): AsyncGenerator<Uint8Array> {
    let left = count;
    for await (const chunk of stream) {
      throwIfAborted(signal);
      if (left >= chunk.byteLength) {
        left -= chunk.byteLength;
        continue;
      }
      yield left > 0 ? chunk.subarray(left) : chunk;
      left = 0;
    }
  }
  const out: ByteStream = rest();
  out.destroy = (error?: Error) => stream.destroy?.(error);
  return out;
}

/** The buffer `pump` reads into when a lending writer lends nothing for a moment. */
const OWN_WINDOW = 1024 * 1024;

async function pump(
  stream: ByteStream,
  writer: Writer,
  offset: number,
  size: number | undefined,
  signal: AbortSignal | undefined,
  onProgress: ((offset: number) => void) | undefined,
): Promise<number> {
  // Abort promptly even while waiting for the next chunk: destroying the stream ends the loop.
  const onAbort = (): void => void stream.destroy?.(abortError(signal as AbortSignal));
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const readInto = stream.readInto;
    // Lockstep when the writer lends its memory: the source fills the lent space, one write per
    // fill instead of one per network chunk. A writer that lends nothing gets the stream's own
    // chunks (reading them into a buffer of ours would add a copy).
    if (typeof readInto === "function" && (writer.window?.()?.byteLength ?? 0) > 0) {
      let own: Uint8Array | undefined;
      for (;;) {
        throwIfAborted(signal);
        const lent = writer.window?.();
        // The writer may lend nothing for a moment (writes queued): then a buffer of ours.
        const win = lent !== undefined && lent.byteLength > 0 ? lent : (own ??= new Uint8Array(Math.min(OWN_WINDOW, Math.max(1, (size ?? Infinity) - offset))));
        const n = await readInto.call(stream, win);
        if (n === 0) break;
        if (size !== undefined && offset + n > size) throw tooLong(writer, size);
        await writer.write(n === win.byteLength ? win : win.subarray(0, n));
        offset += n;
        onProgress?.(offset);
      }
      throwIfAborted(signal);
      return offset;
    }
    for await (const chunk of stream) {
      throwIfAborted(signal);
      if (chunk.byteLength === 0) continue;
      // A source running past the declared size is wrong already: stop before storing more
      // (an endless one would otherwise fill the ingest until memory or disk gave out).
      if (size !== undefined && offset + chunk.byteLength > size) throw tooLong(writer, size);
      await writer.write(chunk);
      offset += chunk.byteLength;
      onProgress?.(offset);
    }
    throwIfAborted(signal);
    return offset;
  } catch (err) {
    if (signal?.aborted) throw abortError(signal);
    throw err;
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
}

function tooLong(writer: Writer, size: number): SizeMismatchError {
  return new SizeMismatchError(`source of ${writer.ref} runs past its ${size} bytes`, { details: { ref: writer.ref, size } });
}
