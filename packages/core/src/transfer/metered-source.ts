/**
 * Push sources that report what flows through them: the orchestration measures bytes between
 * the source and the destination, so every transport (registry, store) gets the same events.
 */
import { pipeline, Readable, Transform, type TransformCallback } from "node:stream";
import type { Descriptor } from "../descriptor.ts";
import type { BlobStatus } from "../status/reporter.ts";
import type { FetchOptions, FetchStream, Fetcher, PushSource, RetryInfo } from "../transport.ts";

/**
 * A source that fetches `desc` from `fetcher` at whatever offset the destination asks for.
 * An offset > 0 is reported as `resumed`. When the fetcher could only start from 0
 * (`rangeIgnored`), the leading bytes are dropped here so the destination keeps its ingest;
 * they still count as transferred.
 */
export function fetchSource(fetcher: Fetcher, desc: Descriptor, blob: BlobStatus, signal: AbortSignal): PushSource {
  return {
    async open(offset = 0) {
      if (offset > 0) blob.resumed(offset);
      const options: FetchOptions & { verify?: boolean } = {
        signal,
        offset,
        // The destination checks size and digest at commit (a store's writer was opened with the
        // digest, a registry verifies the upload): hashing on the way in too would double the CPU.
        verify: false,
        onRetry: (info: RetryInfo) => blob.retrying(info),
        onReconnect: (at: number) => blob.retrying({ reason: `connection dropped, reopening at byte ${at}`, delayMs: 0, attempt: 1 }),
      };
      const upstream = await fetcher.fetch(desc, options);
      return meter(upstream, blob, offset, offset > 0 && upstream.rangeIgnored ? offset : 0);
    },
  };
}

/** A source over bytes already in memory (a manifest read for its children). */
export function memorySource(bytes: Uint8Array, blob: BlobStatus): PushSource {
  return {
    open(offset = 0) {
      if (offset > 0) blob.resumed(offset);
      return meter(Readable.from([Buffer.from(bytes.buffer, bytes.byteOffset + offset, bytes.byteLength - offset)]), blob, offset, 0);
    },
  };
}

function meter(upstream: Readable | FetchStream, blob: BlobStatus, start: number, drop: number): Readable {
  let pos = start;
  let toDrop = drop;
  const size = blob.desc.size;
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      const moved = chunk.byteLength;
      let out = chunk;
      if (toDrop > 0) {
        const cut = Math.min(toDrop, out.byteLength);
        toDrop -= cut;
        out = out.subarray(cut);
      }
      pos += out.byteLength;
      blob.moved(pos, moved);
      cb(null, out.byteLength > 0 ? out : undefined);
    },
    flush(cb: TransformCallback) {
      if (pos === size) blob.committing();
      cb();
    },
  });
  // Errors of either side reach the consumer through `t`; destroying `t` stops the upstream.
  pipeline(upstream, t, () => undefined);
  return t;
}
