/**
 * Push sources that report what flows through them: the orchestration measures bytes between
 * the source and the destination, so every transport (registry, store) gets the same events.
 */
import { Readable } from "node:stream";
import type { Descriptor } from "../descriptor.ts";
import { prematureClose } from "../errors.ts";
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
  return new MeteredReadable(upstream, blob, start, drop);
}

/**
 * Counts the bytes of `upstream` into `blob` and passes them on. A plain Readable fed by the
 * upstream's `data` events (paused on backpressure), not a Transform joined by `pipeline`: every
 * blob of a pull opens one, and for small blobs the Transform's writable side and pipeline's
 * per-stream AbortController cost more than the bytes (issue 6, case 4).
 */
class MeteredReadable extends Readable {
  readonly #upstream: Readable;
  /** Present when the upstream has it and nothing is dropped: counts what it fills. */
  readInto?: (buf: Uint8Array) => Promise<number>;
  #listen: (() => void) | undefined;

  constructor(upstream: Readable | FetchStream, blob: BlobStatus, start: number, drop: number) {
    super();
    this.#upstream = upstream;
    let pos = start;
    let toDrop = drop;
    const size = blob.desc.size;
    const into = (upstream as FetchStream).readInto;
    if (typeof into === "function" && drop === 0) {
      let listening = false;
      this.readInto = async (buf) => {
        if (!listening) {
          // Failures reach a readInto consumer as rejections; an unheard 'error' event would crash.
          listening = true;
          this.on("error", () => {});
        }
        const n = await into.call(upstream, buf);
        if (n > 0) {
          pos += n;
          blob.moved(pos, n);
        } else if (pos === size) blob.committing();
        return n;
      };
    }
    // The data listener is added on the first `_read` (a consumer wants chunks): a consumer
    // that uses `readInto` never switches the upstream to events, whose chunks would count twice.
    this.#listen = () => {
      upstream.pause();
      upstream.on("data", (chunk: Buffer) => {
        const moved = chunk.byteLength;
        let out = chunk;
        if (toDrop > 0) {
          const cut = Math.min(toDrop, out.byteLength);
          toDrop -= cut;
          out = out.subarray(cut);
        }
        pos += out.byteLength;
        blob.moved(pos, moved);
        if (out.byteLength > 0 && !this.push(out)) upstream.pause();
      });
      upstream.once("end", () => this.push(null));
      // Committing once the consumer has taken the last chunk (and so written it): at the
      // upstream's end it may still sit in this stream's buffer, not yet in the destination.
      this.once("end", () => {
        if (pos === size) blob.committing();
      });
    };
    // Errors of either side reach the consumer through this stream; destroying it stops the upstream.
    upstream.on("error", (err: Error) => this.destroy(err));
    upstream.once("close", () => {
      if (!upstream.readableEnded && !this.destroyed) this.destroy(prematureClose());
    });
  }

  override _read(): void {
    if (this.#listen !== undefined) {
      this.#listen();
      this.#listen = undefined;
    }
    this.#upstream.resume();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.#upstream.destroyed) this.#upstream.destroy();
    cb(err);
  }
}
