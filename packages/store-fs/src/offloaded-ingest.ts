/**
 * The write path of a large ingest hashed on the {@link HashWorkerPool}'s worker: chunks are
 * copied into batch buffers of our own (SharedArrayBuffers; one copy, as staging did before);
 * each full batch goes at once to the worker to be hashed and to libuv's thread pool to be
 * written at its position, and is reused when both are done. At most `maxInFlight` batches
 * are out at once, so a writer holds at most (maxInFlight + 1) batches of memory, and the
 * caller's write() waits (back pressure) when hashing or writing falls behind.
 *
 * With a `direct` handle, batches are page-aligned shared memory and a batch that starts and
 * ends on a block boundary is written with O_DIRECT (see fs-writer.ts); others (the tail at a
 * flush, a resume that started mid-block) go through the page cache.
 */
import type { FileHandle } from "node:fs/promises";
import type { Digest, DigestAlgorithm } from "@ferry/core";
import { DIRECT_ALIGN, alignUp, alignedBuffer, inPlace } from "./aligned-buffer.ts";
import { writePreferDirect } from "./direct-write.ts";
import type { HashWorkerPool, PoolIngest } from "./hash-worker-pool.ts";

/** An O_DIRECT handle on the ingest's data file, and what to do when the kernel refuses it. */
export interface OffloadDirect {
  fh: FileHandle;
  /** Called once when a direct write fails with EINVAL (later batches use the page cache). */
  refused(): void;
}

export class OffloadedIngest {
  readonly #pool: HashWorkerPool;
  readonly #ingest: PoolIngest;
  readonly #fh: FileHandle;
  readonly #algorithm: DigestAlgorithm;
  readonly #batchBytes: number;
  readonly #maxInFlight: number;
  /** Batches hashed and written, ready for reuse. */
  readonly #free: Buffer[] = [];
  readonly #inFlight: Array<Promise<void>> = [];
  #batch: Buffer | undefined;
  #staged = 0;
  /** Bytes handed out (the next batch's file position). */
  #posted: number;
  /** Bytes before which everything is written (valid once nothing is in flight). */
  #written: number;
  #failure: unknown;
  #direct: OffloadDirect | undefined;

  private constructor(
    pool: HashWorkerPool,
    ingest: PoolIngest,
    fh: FileHandle,
    algorithm: DigestAlgorithm,
    offset: number,
    batchBytes: number,
    maxInFlight: number,
    direct: OffloadDirect | undefined,
  ) {
    this.#direct = direct;
    this.#pool = pool;
    this.#ingest = ingest;
    this.#fh = fh;
    this.#algorithm = algorithm;
    this.#batchBytes = batchBytes;
    this.#maxInFlight = maxInFlight;
    this.#posted = offset;
    this.#written = offset;
  }

  /** Register an ingest whose first `offset` bytes are in `fh` (the worker re-hashes them). */
  static async open(
    pool: HashWorkerPool,
    o: { fh: FileHandle; algorithm: DigestAlgorithm; offset: number; batchBytes: number; maxInFlight: number; direct?: OffloadDirect },
  ): Promise<OffloadedIngest> {
    const ingest = await pool.open(o.fh.fd, o.algorithm, o.offset);
    const batchBytes = o.direct !== undefined ? alignUp(o.batchBytes) : o.batchBytes;
    return new OffloadedIngest(pool, ingest, o.fh, o.algorithm, o.offset, batchBytes, Math.max(1, o.maxInFlight), o.direct);
  }

  /** True while aligned batches are written with O_DIRECT. */
  get direct(): boolean {
    return this.#direct !== undefined;
  }

  /** Bytes written to the file (after flush()). */
  get written(): number {
    return this.#written;
  }

  /** Accept `chunk` (copied: the caller may reuse it once this resolves). */
  async write(chunk: Uint8Array): Promise<void> {
    this.#throwIfFailed();
    let at = 0;
    while (at < chunk.byteLength) {
      const batch = (this.#batch ??= this.#free.pop() ?? this.#newBatch());
      const n = Math.min(chunk.byteLength - at, batch.byteLength - this.#staged);
      const part = n === chunk.byteLength ? chunk : chunk.subarray(at, at + n);
      if (!inPlace(part, batch, this.#staged)) batch.set(part, this.#staged);
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
    if (!inPlace(chunk, batch, this.#staged)) batch.set(chunk, this.#staged);
    this.#staged += chunk.byteLength;
    return true;
  }

  /**
   * The free part of the batch being filled, lent (`Writer.window`): bytes read into it and
   * written back are not copied. Undefined once a batch failed.
   */
  window(): Uint8Array | undefined {
    if (this.#failure !== undefined) return undefined;
    const batch = (this.#batch ??= this.#free.pop() ?? this.#newBatch());
    return this.#staged < batch.byteLength ? batch.subarray(this.#staged) : undefined;
  }

  /** Post the staged bytes and wait until every batch is hashed and written. */
  async flush(): Promise<void> {
    this.#throwIfFailed();
    if (this.#staged > 0) await this.#post();
    while (this.#inFlight.length > 0) await this.#inFlight.shift();
    this.#throwIfFailed();
    this.#written = this.#posted;
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
    const hashed = this.#pool.hash(this.#ingest, batch.buffer as SharedArrayBuffer, len);
    const written = this.#write(batch, len, pos);
    const done = Promise.all([hashed, written]).then(
      () => {
        this.#free.push(batch);
      },
      async (err: unknown) => {
        this.#failure ??= err;
        // The batch is reusable only once neither side reads it any more.
        await Promise.allSettled([hashed, written]);
        throw err;
      },
    );
    done.catch(() => {}); // observed in order by flush()/write()
    this.#inFlight.push(done);
    while (this.#inFlight.length >= this.#maxInFlight) await this.#inFlight.shift();
  }

  #newBatch(): Buffer {
    return this.#direct !== undefined ? alignedBuffer(this.#batchBytes, true) : Buffer.from(new SharedArrayBuffer(this.#batchBytes));
  }

  async #write(batch: Buffer, len: number, pos: number): Promise<void> {
    const direct = this.#direct;
    const aligned = direct !== undefined && pos % DIRECT_ALIGN === 0 && len % DIRECT_ALIGN === 0;
    if ((await writePreferDirect(aligned ? direct.fh : undefined, this.#fh, batch, len, pos)) === "refused" && this.#direct !== undefined) {
      this.#direct = undefined;
      direct!.refused();
    }
  }

  #throwIfFailed(): void {
    if (this.#failure !== undefined) throw this.#failure;
  }
}
