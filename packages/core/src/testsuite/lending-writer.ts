import type { Writer } from "../content.ts";

/**
 * Wrap `inner` so that it lends `window` (a buffer the test owns) through `Writer.window()` and
 * records every chunk `write` is given in `writes`: a test of a `readInto` source (core's
 * `copyBlob`, the fetcher's socket reads) can then tell bytes read into the window (a write of
 * the window itself) from bytes copied there.
 */
export function lendingWriter(inner: Writer, window: Uint8Array | undefined, writes: Uint8Array[]): Writer {
  return {
    ref: inner.ref,
    window: () => window,
    write: (chunk) => {
      writes.push(chunk);
      return inner.write(chunk);
    },
    digest: () => inner.digest(),
    status: () => inner.status(),
    truncate: (size) => inner.truncate(size),
    commit: (size, expected, options) => inner.commit(size, expected, options),
    close: () => inner.close(),
  };
}
