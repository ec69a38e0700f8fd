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

  constructor(size: number, max = 16) {
    this.size = size;
    this.#max = max;
  }

  take(): Buffer {
    return this.#idle.pop() ?? Buffer.allocUnsafeSlow(this.size);
  }

  /** Return a buffer taken from this pool; its owner must not touch it afterwards. */
  give(buf: Buffer): void {
    if (buf.byteLength === this.size && this.#idle.length < this.#max) this.#idle.push(buf);
  }
}
