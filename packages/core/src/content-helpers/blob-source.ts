import type { Readable } from "node:stream";
import type { ReaderAt } from "../content.ts";

/**
 * Bytes from some position; a Node `Readable` is one. `rangeIgnored` means "I started at 0".
 * `readInto`, when present, fills a caller's buffer with the next bytes (resolving with the
 * count, 0 at the end): `copyBlob` then reads straight into the writer's `window()`. A stream
 * read this way reports failures by rejecting the read (and must not crash on an 'error' event
 * nobody listens to).
 */
export type ByteStream = AsyncIterable<Uint8Array> & {
  rangeIgnored?: boolean;
  destroy?(error?: Error): unknown;
  readInto?(buf: Uint8Array): Promise<number>;
};

/**
 * Opens the content at `offset`. When it cannot honour the offset it returns a stream starting
 * at 0 flagged `rangeIgnored = true` (as `Fetcher.fetch` does) and the copy starts over.
 */
export type SeekFunction = (offset: number) => ByteStream | Readable | Promise<ByteStream | Readable>;

/** Where blob bytes come from, most capable first. */
export type BlobSource =
  /** Random access: resumes exactly at the writer's offset. */
  | ReaderAt
  /** Re-openable at an offset: resumes, or starts over when the offset is ignored. */
  | SeekFunction
  /** Same as a {@link SeekFunction}, shaped like a `PushSource`. */
  | { open(offset?: number): ByteStream | Readable | Promise<ByteStream | Readable> }
  /** A one-shot stream: bytes up to the writer's offset are read and discarded. */
  | ByteStream
  | Readable;

export function isReaderAt(source: unknown): source is ReaderAt {
  const s = source as Partial<ReaderAt> | null;
  return typeof s === "object" && s !== null && typeof s.createReadStream === "function" && typeof s.read === "function";
}
