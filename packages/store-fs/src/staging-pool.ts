/**
 * Staging buffers shared by a store's writers. Each writer stages small writes in one buffer
 * of `writeBatchBytes`; allocating it per ingest costs a 1 MiB allocation per blob (GC churn,
 * and RSS when many small blobs go through), so finished writers hand it back here and the
 * next writer reuses it. At most `max` idle buffers are kept. The pool also counts the buffers
 * it has out, so that optional ones (a direct writer's second batch) stay within a budget.
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

  /** Buffers taken and not given back yet (WeakSet: a buffer never returned is not kept alive). */
  readonly #lent = new WeakSet<Buffer>();
  #out = 0;

  take(): Buffer {
    const buf = this.#idle.pop() ?? this.#allocate(this.size);
    this.#lent.add(buf);
    this.#out++;
    return buf;
  }

  /** A buffer only while fewer than `maxOut` are out, else undefined (the caller does without). */
  takeWithin(maxOut: number): Buffer | undefined {
    return this.#out < maxOut ? this.take() : undefined;
  }

  /** Return a buffer taken from this pool; its owner must not touch it afterwards. */
  give(buf: Buffer): void {
    if (this.#lent.delete(buf)) this.#out--;
    if (buf.byteLength === this.size && this.#idle.length < this.#max) this.#idle.push(buf);
  }
}
