/**
 * The write path of a large ingest whose hashing and writing run on the {@link HashWritePool}'s
 * worker: chunks are copied into batch buffers of our own (one copy, as staging did before);
 * each full batch is transferred to the worker, which hashes it and writes it at its position,
 * then hands the buffer back for reuse. At most `maxInFlight` batches are out at once, so a
 * writer holds at most (maxInFlight + 1) batches of memory, and the caller's write() waits (back
 * pressure) when the worker falls behind.
 */
import type { Digest, DigestAlgorithm } from "@ferry/core";
import type { HashWritePool, PoolIngest } from "./hash-write-pool.ts";

export class OffloadedIngest {
  readonly #pool: HashWritePool;
  readonly #ingest: PoolIngest;
  readonly #fd: number;
  readonly #algorithm: DigestAlgorithm;
  readonly #batchBytes: number;
  readonly #maxInFlight: number;
  /** Buffers back from the worker, ready for reuse. */
  readonly #free: Buffer[] = [];
  readonly #inFlight: Array<Promise<void>> = [];
  #batch: Buffer | undefined;
  #staged = 0;
  /** Bytes handed to the worker (the next batch's file position). */
  #posted: number;
  /** Bytes the worker has written (acknowledged). */
  #written: number;
  #failure: unknown;

  private constructor(pool: HashWritePool, ingest: PoolIngest, fd: number, algorithm: DigestAlgorithm, offset: number, batchBytes: number, maxInFlight: number) {
    this.#pool = pool;
    this.#ingest = ingest;
    this.#fd = fd;
    this.#algorithm = algorithm;
    this.#batchBytes = batchBytes;
    this.#maxInFlight = maxInFlight;
    this.#posted = offset;
    this.#written = offset;
  }

  /** Register an ingest whose first `offset` bytes are in `fd` (the worker re-hashes them). */
  static async open(
    pool: HashWritePool,
    o: { fd: number; algorithm: DigestAlgorithm; offset: number; batchBytes: number; maxInFlight: number },
  ): Promise<OffloadedIngest> {
    const ingest = await pool.open(o.fd, o.algorithm, o.offset);
    return new OffloadedIngest(pool, ingest, o.fd, o.algorithm, o.offset, o.batchBytes, Math.max(1, o.maxInFlight));
  }

  /** Bytes acknowledged as written to the file. */
  get written(): number {
    return this.#written;
  }

  /** Accept `chunk` (copied: the caller may reuse it once this resolves). */
  async write(chunk: Uint8Array): Promise<void> {
    this.#throwIfFailed();
    let at = 0;
    while (at < chunk.byteLength) {
      const batch = (this.#batch ??= this.#free.pop() ?? Buffer.allocUnsafeSlow(this.#batchBytes));
      const n = Math.min(chunk.byteLength - at, batch.byteLength - this.#staged);
      batch.set(n === chunk.byteLength ? chunk : chunk.subarray(at, at + n), this.#staged);
      this.#staged += n;
      at += n;
      if (this.#staged === batch.byteLength) await this.#post();
    }
  }

  /**
   * Copy `chunk` into the batch being filled when it fits without filling it (nothing to post,
   * nothing to wait for); false, with nothing done, otherwise.
   */
  stageSync(chunk: Uint8Array): boolean {
    if (this.#failure !== undefined) return false;
    const batch = this.#batch ?? this.#free.pop();
    if (batch === undefined) return false;
    this.#batch = batch;
    if (this.#staged + chunk.byteLength >= batch.byteLength) return false;
    batch.set(chunk, this.#staged);
    this.#staged += chunk.byteLength;
    return true;
  }

  /** Post the staged bytes and wait until the worker has written everything. */
  async flush(): Promise<void> {
    this.#throwIfFailed();
    if (this.#staged > 0) await this.#post();
    while (this.#inFlight.length > 0) await this.#inFlight.shift();
    this.#throwIfFailed();
  }

  /** Wait for every batch in flight, whatever its outcome (before closing the file). */
  async settle(): Promise<void> {
    await Promise.allSettled(this.#inFlight.splice(0));
  }

  /** Digest of every byte accepted, staged ones included; blocks until the worker answers. */
  digestSync(): Digest {
    this.#throwIfFailed();
    const extra = this.#staged > 0 ? this.#batch!.subarray(0, this.#staged) : undefined;
    return `${this.#algorithm}:${this.#pool.digestSync(this.#ingest, extra)}` as Digest;
  }

  /** Digest of every byte accepted (flushes first). */
  async digest(): Promise<Digest> {
    await this.flush();
    return `${this.#algorithm}:${await this.#pool.digest(this.#ingest)}` as Digest;
  }

  /** Start over from byte 0 (the caller truncated the file). */
  async reset(): Promise<void> {
    await this.settle();
    await this.#pool.reset(this.#ingest);
    this.#staged = 0;
    this.#posted = 0;
    this.#written = 0;
    this.#failure = undefined;
  }

  /** Forget the ingest on the worker; call only after settle(). */
  release(): void {
    this.#pool.release(this.#ingest);
    this.#batch = undefined;
    this.#free.length = 0;
  }

  async #post(): Promise<void> {
    const batch = this.#batch!;
    const len = this.#staged;
    const pos = this.#posted;
    this.#batch = undefined;
    this.#staged = 0;
    this.#posted += len;
    const done = this.#pool.write(this.#ingest, this.#fd, batch.buffer as ArrayBuffer, len, pos).then(
      (buf) => {
        this.#written = Math.max(this.#written, pos + len);
        if (buf.byteLength === this.#batchBytes) this.#free.push(Buffer.from(buf));
      },
      (err: unknown) => {
        this.#failure ??= err;
        throw err;
      },
    );
    done.catch(() => {}); // observed in order by flush()/write()
    this.#inFlight.push(done);
    while (this.#inFlight.length >= this.#maxInFlight) await this.#inFlight.shift();
  }

  #throwIfFailed(): void {
    if (this.#failure !== undefined) throw this.#failure;
  }
}
