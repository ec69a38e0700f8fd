/** Random access to one committed blob through an open file handle. */
import type { FileHandle } from "node:fs/promises";
import { Readable } from "node:stream";
import { FailedPreconditionError, InvalidArgumentError, throwIfAborted, type ReaderAt } from "@ferry/core";

/** Size of the chunks a read stream yields. */
const STREAM_CHUNK = 1024 * 1024;

export class FsReaderAt implements ReaderAt {
  readonly size: number;
  readonly #fh: FileHandle;
  #closed = false;

  constructor(fh: FileHandle, size: number) {
    this.#fh = fh;
    this.size = size;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    if (this.#closed) throw new FailedPreconditionError("read from a closed ReaderAt");
    checkRange(offset, length);
    const want = Math.max(0, Math.min(length, this.size - offset));
    const buf = Buffer.allocUnsafe(want);
    let got = 0;
    while (got < want) {
      const { bytesRead } = await this.#fh.read(buf, got, want - got, offset + got);
      if (bytesRead === 0) break; // cannot happen for an immutable blob, but never spin
      got += bytesRead;
    }
    return got === want ? buf : buf.subarray(0, got);
  }

  /** One `pread` into the caller's buffer (no allocation): see `ReaderAt.readInto`. */
  async readInto(buffer: Uint8Array, offset: number): Promise<number> {
    if (this.#closed) throw new FailedPreconditionError("read from a closed ReaderAt");
    checkRange(offset, buffer.byteLength);
    const want = Math.max(0, Math.min(buffer.byteLength, this.size - offset));
    if (want === 0) return 0;
    const { bytesRead } = await this.#fh.read(buffer, 0, want, offset);
    return bytesRead;
  }

  createReadStream(options: { offset?: number; end?: number; signal?: AbortSignal } = {}): Readable {
    const start = options.offset ?? 0;
    const end = Math.min(options.end ?? this.size, this.size);
    checkRange(start, Math.max(0, end - start));
    const signal = options.signal;
    const self = this;
    async function* chunks(): AsyncGenerator<Buffer> {
      let pos = start;
      while (pos < end) {
        throwIfAborted(signal);
        const chunk = await self.read(pos, Math.min(STREAM_CHUNK, end - pos));
        if (chunk.byteLength === 0) return;
        pos += chunk.byteLength;
        yield chunk as Buffer;
      }
    }
    return Readable.from(chunks(), { objectMode: false, ...(signal ? { signal } : {}) });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#fh.close();
  }
}

function checkRange(offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0) throw new InvalidArgumentError(`read offset must be a non-negative integer, got ${offset}`);
  if (!Number.isSafeInteger(length) || length < 0) throw new InvalidArgumentError(`read length must be a non-negative integer, got ${length}`);
}
