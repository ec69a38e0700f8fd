/**
 * Lent chunks for pushes from a store: the blob is read with `ReaderAt.readInto` into two
 * buffers that take turns, instead of a stream that allocates a fresh 1 MiB buffer per read.
 * A 1 GiB push from store-fs otherwise allocates 1 GiB of short-lived buffers, and V8 runs a
 * full garbage collection for every 64 MB of them: reusing two cut ferry's CPU for case 2 of the
 * benchmark by about a third (issue 6).
 */
import type { ReaderAt } from "../content.ts";
import type { Descriptor } from "../descriptor.ts";
import { SizeMismatchError, throwIfAborted } from "../errors.ts";
import type { BlobStatus } from "../status/reporter.ts";
import type { Fetcher, PushSource } from "../transport.ts";

/** Bytes per lent chunk (as store-fs's read streams). */
export const LENT_CHUNK = 1024 * 1024;

/**
 * `source` plus {@link PushSource.chunks} when `fetcher` has random access (`readerAt`). Chunks
 * are reported to `blob` as `open`'s stream reports them: `resumed` for an offset, `moved` per
 * chunk, `committing` once the last byte went out. A reader without `readInto` is streamed
 * instead (fresh buffers; same lending contract).
 */
export function withLentChunks(source: PushSource, fetcher: Fetcher, desc: Descriptor, blob: BlobStatus, signal: AbortSignal): PushSource {
  const readerAt = fetcher.readerAt?.bind(fetcher);
  if (!readerAt) return source;
  return {
    open: (offset) => source.open(offset),
    async *chunks(offset = 0) {
      throwIfAborted(signal);
      if (offset > 0) blob.resumed(offset);
      const ra = await readerAt(desc, { signal });
      try {
        // A committed blob was verified when it was stored; the destination verifies the digest
        // again (a registry's PUT ?digest=), so only the size is checked here.
        if (ra.size !== desc.size) {
          throw new SizeMismatchError(`${desc.digest}: the store holds ${ra.size} bytes, the descriptor says ${desc.size}`, {
            details: { digest: desc.digest, size: desc.size, got: ra.size },
          });
        }
        const readInto = ra.readInto?.bind(ra);
        const chunks = readInto ? lend(readInto, ra.size, offset, signal) : stream(ra, offset, signal);
        let pos = offset;
        for await (const chunk of chunks) {
          pos += chunk.byteLength;
          blob.moved(pos, chunk.byteLength);
          yield chunk;
        }
        if (pos === desc.size) blob.committing();
      } finally {
        await ra.close().catch(() => undefined);
      }
    },
  };
}

/**
 * Two buffers take turns: while the consumer holds the chunk in one, the next read fills the
 * other. A buffer is refilled only after the consumer asked for the chunk after the one it lent.
 */
async function* lend(readInto: ReadInto, end: number, start: number, signal: AbortSignal): AsyncGenerator<Uint8Array> {
  const size = Math.min(LENT_CHUNK, Math.max(1, end - start));
  const buffers: [Buffer, Buffer] = [Buffer.allocUnsafeSlow(size), Buffer.allocUnsafeSlow(size)];
  let turn: 0 | 1 = 0;
  let pos = start;
  let pending: Promise<number> | undefined = pos < end ? fill(readInto, buffers[0], pos, end) : undefined;
  try {
    while (pending) {
      const got = await pending;
      pending = undefined;
      throwIfAborted(signal);
      const chunk = buffers[turn].subarray(0, got);
      pos += got;
      turn = turn === 0 ? 1 : 0;
      // The other buffer's chunk was released when the consumer asked for this one.
      if (pos < end) pending = fill(readInto, buffers[turn], pos, end);
      yield chunk;
    }
  } finally {
    // Never close the file under a read in flight (the consumer stopped early).
    if (pending) await pending.catch(() => undefined);
  }
}

/** `ReaderAt.readInto`: bytes read into `buffer` from `offset`, 0 at the end. */
type ReadInto = (buffer: Uint8Array, offset: number) => Promise<number>;

/** Fill `buffer` from `pos` (up to `end`): only the blob's last chunk is short. */
async function fill(readInto: ReadInto, buffer: Buffer, pos: number, end: number): Promise<number> {
  const want = Math.min(buffer.byteLength, end - pos);
  let got = 0;
  while (got < want) {
    const n = await readInto(buffer.subarray(got, want), pos + got);
    if (n === 0) throw new SizeMismatchError(`blob ended at byte ${pos + got}, expected ${end}`, { details: { offset: pos + got, size: end } });
    got += n;
  }
  return got;
}

async function* stream(ra: ReaderAt, start: number, signal: AbortSignal): AsyncGenerator<Uint8Array> {
  const s = ra.createReadStream({ offset: start, signal });
  try {
    for await (const chunk of s as AsyncIterable<Uint8Array>) yield chunk;
  } finally {
    s.destroy();
  }
}
