/**
 * Staging buffers shared by a store's writers. Each writer stages small writes in one buffer
 * of `writeBatchBytes`; allocating it per ingest costs a 1 MiB allocation per blob (GC churn,
 * and RSS when many small blobs go through), so finished writers hand it back here and the
 * next writer reuses it. At most `max` idle buffers are kept.
 */
export class StagingPool {
  readonly size: number;
  readonly #max: number;
  readonly #idle: Buffer[] = [];

  readonly #allocate: (size: number) => Buffer;

  /** `allocate` makes a new buffer when none is idle (default: an unpooled Buffer; store-fs also keeps page-aligned ones). */
  constructor(size: number, max = 16, allocate: (size: number) => Buffer = (n) => Buffer.allocUnsafeSlow(n)) {
    this.size = size;
    this.#max = max;
    this.#allocate = allocate;
  }

  take(): Buffer {
    return this.#idle.pop() ?? this.#allocate(this.size);
  }

  /** Return a buffer taken from this pool; its owner must not touch it afterwards. */
  give(buf: Buffer): void {
    if (buf.byteLength === this.size && this.#idle.length < this.#max) this.#idle.push(buf);
  }
}
