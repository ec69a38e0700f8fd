/**
 * Bytes held as a list of chunks, appended to and read without ever concatenating the whole.
 * Small writes are packed into a shared tail buffer so a stream of tiny chunks does not turn
 * into millions of tiny arrays.
 */
const TAIL_CAPACITY = 64 * 1024;
const SMALL = 16 * 1024;

export class ChunkList {
  readonly #chunks: Uint8Array[] = [];
  /** `#starts[i]` is the offset of `#chunks[i]`: binary search for reads. */
  readonly #starts: number[] = [];
  #size = 0;
  #tail: Uint8Array | undefined;
  #tailUsed = 0;
  /** Where in the tail buffer the last chunk starts, when the last chunk is a view of it. */
  #tailStart: number | undefined;

  get size(): number {
    return this.#size;
  }

  /** Copy `data` in (the caller may reuse its buffer afterwards). */
  append(data: Uint8Array): void {
    if (data.byteLength === 0) return;
    if (data.byteLength < SMALL) {
      if (this.#tail === undefined || this.#tailUsed + data.byteLength > TAIL_CAPACITY) {
        this.#tail = new Uint8Array(TAIL_CAPACITY);
        this.#tailUsed = 0;
        this.#tailStart = undefined;
      }
      if (this.#tailStart === undefined) {
        // After a large chunk, small ones go on filling the same tail buffer (a new buffer
        // each time kept 64 KiB per few bytes).
        this.#tailStart = this.#tailUsed;
        this.#push(this.#tail.subarray(this.#tailUsed, this.#tailUsed));
      }
      this.#tail.set(data, this.#tailUsed);
      this.#tailUsed += data.byteLength;
      // The last chunk is a growing view of the tail buffer.
      this.#chunks[this.#chunks.length - 1] = this.#tail.subarray(this.#tailStart, this.#tailUsed);
      this.#size += data.byteLength;
      return;
    }
    this.#tailStart = undefined;
    this.#push(data.slice());
    this.#size += data.byteLength;
  }

  /**
   * No more appends (a committed blob): a tail buffer mostly empty is given back, its bytes
   * copied out. A 200-byte manifest kept a 64 KiB buffer.
   */
  seal(): void {
    const tail = this.#tail;
    this.#tail = undefined;
    this.#tailStart = undefined;
    if (tail === undefined || this.#tailUsed * 2 > TAIL_CAPACITY) return;
    for (let i = 0; i < this.#chunks.length; i++) {
      const c = this.#chunks[i] as Uint8Array;
      if (c.buffer === tail.buffer) this.#chunks[i] = c.slice();
    }
  }

  #push(chunk: Uint8Array): void {
    this.#starts.push(this.#size);
    this.#chunks.push(chunk);
  }

  /** Views of the bytes in [start, end), chunk by chunk. */
  *views(start = 0, end = this.#size): Generator<Uint8Array> {
    end = Math.min(end, this.#size);
    if (start >= end) return;
    for (let i = this.#indexOf(start); i < this.#chunks.length; i++) {
      const chunkStart = this.#starts[i] as number;
      if (chunkStart >= end) return;
      const chunk = this.#chunks[i] as Uint8Array;
      const from = Math.max(start - chunkStart, 0);
      const to = Math.min(end - chunkStart, chunk.byteLength);
      if (to > from) yield chunk.subarray(from, to);
    }
  }

  /** A copy of the bytes in [offset, offset + length), clipped at the end. */
  read(offset: number, length: number): Uint8Array {
    const end = Math.min(offset + length, this.#size);
    if (offset >= end) return new Uint8Array(0);
    const out = new Uint8Array(end - offset);
    let at = 0;
    for (const v of this.views(offset, end)) {
      out.set(v, at);
      at += v.byteLength;
    }
    return out;
  }

  /** Index of the chunk holding byte `offset`. */
  #indexOf(offset: number): number {
    let lo = 0;
    let hi = this.#starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((this.#starts[mid] as number) <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}
