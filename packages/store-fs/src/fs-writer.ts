/**
 * One open ingest of an {@link FsStore}: a resumable, lock-protected writer.
 *
 * Bytes are hashed as they arrive and staged in a buffer that goes to disk as one `writev` of at
 * least `writeBatchBytes` (small writes cost a syscall each otherwise). Commit flushes, verifies
 * size and digest, fsyncs once, makes the file read-only and publishes it with `link(2)` into
 * `blobs/`: link fails when the target exists, so of two refs committing one digest exactly one
 * wins; the loser gets `AlreadyExists` and keeps its (closed, unlocked) ingest. The winner's
 * ingest directory is removed afterwards; a crash in between leaves a data file with a second
 * link, which a reopen detects and discards.
 */
import { constants as fsConstants } from "node:fs";
import { chmod, lstat, mkdir, open, rename, unlink, writeFile, type FileHandle } from "node:fs/promises";
import { dirname, join } from "node:path";
import {
  FailedPreconditionError,
  InvalidArgumentError,
  LockedError,
  SizeMismatchError,
  digestAlgorithm,
  nodeDigesters,
  parseDigest,
  throwIfAborted,
  type CommitOptions,
  type Digest,
  type DigestAlgorithm,
  type Digester,
  type DigesterFactory,
  type Status,
  type Writer,
  type WriterOptions,
} from "@ferry/core";
import type { BlobMetaStore } from "./blob-meta.ts";
import { validateLabels } from "./blob-meta.ts";
import { DIRECT_ALIGN, inPlace } from "./aligned-buffer.ts";
import { writeAll, writePreferDirect } from "./direct-write.ts";
import { newDigester, restoreDigester } from "./digesters.ts";
import { FileLock, lockedError } from "./file-lock.ts";
import { HashWorkerPool } from "./hash-worker-pool.ts";
import { OffloadedIngest } from "./offloaded-ingest.ts";
import { errno, fsyncDirShared, isENOENT, randomToken, readOptional, removeDirOf, unlinkIfExists, writeFileAtomic } from "./fs-util.ts";
import {
  INGEST_FILE_NAMES,
  IngestFiles,
  encodeCheckpoint,
  ingestFile,
  readCheckpoint,
  readExpected,
  readTime,
  readTotal,
} from "./ingest-files.ts";
import { linkBlob, recordCommitMeta } from "./link-blob.ts";
import { verifyDigests } from "./verify-digests.ts";
import { validateRef, type Layout } from "./layout.ts";
import type { StagingPool } from "./staging-pool.ts";

/** What a writer needs from its store. */
export interface WriterContext {
  layout: Layout;
  digesters: DigesterFactory;
  meta: BlobMetaStore;
  writeBatchBytes: number;
  /** Staging buffers of writeBatchBytes, reused across writers. */
  staging: StagingPool;
  checkpointBytes: number;
  staleLockMs: number;
  fsync: boolean;
  /**
   * Ingests declaring at least this total, hashed with node:crypto (the default digesters),
   * hash on the worker thread of {@link HashWorkerPool} while the thread pool writes. Default
   * `Infinity` (off).
   */
  hashWorkerMinBytes?: number;
  /**
   * Ingests declaring at least this total write their data with O_DIRECT, from the page-aligned
   * buffers of {@link directStaging} (see the README's "Direct writes"). `Infinity` = off.
   */
  directWriteMinBytes: number;
  /**
   * Batches of {@link directStaging} that may be out before a direct writer stops taking a
   * second one (from `directWriteMemoryBytes`); a writer's first batch is always granted.
   */
  directSpareLimit: number;
  /** Page-aligned staging buffers (writeBatchBytes rounded up to DIRECT_ALIGN) for direct writers. */
  directStaging: StagingPool;
  /** Store-wide; false once the filesystem refused O_DIRECT (tmpfs, some FUSE), so it is not tried again. */
  direct: { supported: boolean };
  onClosed(writer: FsWriter): void;
}

/** How an ingest was resumed; useful to check that a checkpoint saved work. */
export interface ResumeInfo {
  /** Bytes found in the ingest when it was opened. */
  offset: number;
  /** Bytes whose hash came from a saved checkpoint instead of re-reading the data. */
  restoredFromCheckpoint: number;
}

const REHASH_CHUNK = 1024 * 1024;
const RESOLVED: Promise<void> = Promise.resolve();
/**
 * Off by default: on this project's 2-core benchmark machine, shared with other work, hashing
 * on a worker cost more CPU (thread hand-offs, +0.8 s system time per GiB) than it freed on the
 * main thread, and a pull got slower (see the README's throughput notes).
 */
const HASH_WORKER_MIN_BYTES = Number.POSITIVE_INFINITY;
/** Batches a worker-backed writer may have in flight (memory: this many + 1 batches). */
const HASH_WORKER_IN_FLIGHT = 2;

export class FsWriter implements Writer {
  readonly ref: string;
  readonly resumed: ResumeInfo;
  readonly #ctx: WriterContext;
  readonly #dir: string;
  readonly #lock: FileLock;
  readonly #signal: AbortSignal | undefined;
  #fh: FileHandle | undefined;
  /** The main-thread hash; undefined when the ingest hashes on the worker ({@link #offload}). */
  #digester: Digester | undefined;
  #offload: OffloadedIngest | undefined;
  /** The worker-side digest as last verified, for digest() once the worker forgot the ingest. */
  #finalDigest: Digest | undefined;
  readonly #algorithm: DigestAlgorithm;
  #total: number;
  #expected: Digest | undefined;
  readonly #startedAt: Date;
  /** Epoch ms; a number so that a write does not allocate a Date. */
  #updatedAt: number;
  /** Bytes accepted (on disk plus staged). */
  #offset: number;
  /** Bytes on disk. */
  #flushed: number;
  /** Taken from the store's pool on the first small write: writers fed big chunks never need it. */
  #staging: Buffer | undefined;
  #staged = 0;
  /**
   * Direct mode (set at open, never changes): #staging is a page-aligned buffer whose index 0
   * is at the aligned file offset `#flushed - #lead`, so every write of it is a legal O_DIRECT
   * write. Its first #lead bytes are already in the file (the head of a block that an earlier
   * flush ended inside); the staged bytes follow them.
   */
  readonly #direct: boolean;
  #lead = 0;
  /** The data file opened again with O_DIRECT; undefined once the filesystem refused a write. */
  #directFh: FileHandle | undefined;
  /** Direct mode: the write of the previous full batch, still running (never rejects; failures go to #broken). */
  #inflight: Promise<void> | undefined;
  /** Direct mode: the other aligned batch (the one in flight, or idle), taken at the first hand-off. */
  #spare: Buffer | undefined;
  #checkpointed: number;
  #closed = false;
  #broken: unknown;
  #queue: Promise<unknown> = Promise.resolve();
  /** Operations queued or running in {@link #serial}. */
  #queued = 0;

  private constructor(init: {
    ctx: WriterContext;
    ref: string;
    dir: string;
    lock: FileLock;
    fh: FileHandle;
    digester: Digester | undefined;
    offload: OffloadedIngest | undefined;
    algorithm: DigestAlgorithm;
    total: number;
    expected: Digest | undefined;
    startedAt: Date;
    updatedAt: Date;
    offset: number;
    checkpointed: number;
    resumed: ResumeInfo;
    signal: AbortSignal | undefined;
    direct?: { fh: FileHandle; staging: Buffer; lead: number };
    offloadDirect?: FileHandle;
  }) {
    this.#ctx = init.ctx;
    this.ref = init.ref;
    this.#dir = init.dir;
    this.#lock = init.lock;
    this.#fh = init.fh;
    this.#digester = init.digester;
    this.#offload = init.offload;
    this.#algorithm = init.algorithm;
    this.#total = init.total;
    this.#expected = init.expected;
    this.#startedAt = init.startedAt;
    this.#updatedAt = init.updatedAt.getTime();
    this.#offset = init.offset;
    this.#flushed = init.offset;
    this.#checkpointed = init.checkpointed;
    this.resumed = init.resumed;
    this.#signal = init.signal;
    this.#direct = init.direct !== undefined;
    // The worker-backed path writes through its own O_DIRECT handle; the writer only closes it.
    this.#directFh = init.offloadDirect;
    if (init.direct !== undefined) {
      this.#directFh = init.direct.fh;
      this.#staging = init.direct.staging;
      this.#lead = init.direct.lead;
    }
  }

  /** True when this writer writes with O_DIRECT (diagnostics and tests). */
  get direct(): boolean {
    if (this.#offload !== undefined) return this.#offload.direct;
    return this.#directFh !== undefined;
  }

  /**
   * Direct mode lends the free part of the aligned batch being filled, the hash worker's ingests
   * their shared batch: a source that reads into it and writes that prefix back saves the copy
   * into the batch (issue 6). Page-cache mode, and a writer with writes queued, lend nothing.
   */
  window(): Uint8Array | undefined {
    if (this.#queued > 0 || this.#broken !== undefined || this.#closed) return undefined;
    if (this.#offload !== undefined) return this.#offload.window();
    if (!this.#direct) return undefined;
    const staging = this.#staging;
    if (staging === undefined) return undefined;
    const at = this.#lead + this.#staged;
    return at < staging.byteLength ? staging.subarray(at) : undefined;
  }

  /**
   * Open or resume the ingest `options.ref`; `Locked` when a live writer holds it. `held` is
   * the ingest's lock when the caller holds it already (the small-blob writer's spill, which
   * must not let go of its ingest between writing it and going on with it); it is released
   * when the open fails.
   */
  static async open(ctx: WriterContext, options: WriterOptions, held?: FileLock): Promise<FsWriter> {
    let lock = held;
    try {
      const { ref, signal } = options;
      validateRef(ref);
      throwIfAborted(signal);
      const total = options.total ?? 0;
      if (!Number.isSafeInteger(total) || total < 0) throw new InvalidArgumentError(`total must be a non-negative integer, got ${options.total}`);
      const expected = options.expected === undefined ? undefined : parseDigest(options.expected);
      const dir = ctx.layout.ingestPath(ref);
      for (let attempt = 0; lock === undefined; attempt++) {
        try {
          // Inside the try: a recursive mkdir racing a commit that removes this directory can
          // itself fail with ENOENT (it sees EEXIST, then the directory is gone).
          await mkdir(dir, { recursive: true });
          const got = await FileLock.tryAcquire(ingestFile(dir, "lock"), { staleMs: ctx.staleLockMs });
          if (!got.lock) throw lockedError(`ingest ${JSON.stringify(ref)}`, got.holder);
          lock = got.lock;
        } catch (err) {
          // The directory vanished under us (an abort or commit elsewhere removed it): recreate.
          if (isENOENT(err) && attempt < 10) continue;
          throw err;
        }
      }
      return await FsWriter.#load(ctx, { ref, dir, lock, total, expected, signal });
    } catch (err) {
      await lock?.release();
      throw err;
    }
  }

  static async #load(
    ctx: WriterContext,
    o: { ref: string; dir: string; lock: FileLock; total: number; expected: Digest | undefined; signal: AbortSignal | undefined },
  ): Promise<FsWriter> {
    const { ref, dir } = o;
    const storedRef = await readOptional(ingestFile(dir, "ref"));
    if (storedRef !== undefined && storedRef !== ref) {
      throw new FailedPreconditionError(
        `ingest directory ${dir} belongs to ref ${JSON.stringify(storedRef.slice(0, 200))}, not ${JSON.stringify(ref)} (hash collision or corruption)`,
        { details: { ref } },
      );
    }
    const now = new Date();
    let total = o.total;
    let expected = o.expected;
    let startedAt = now;
    let updatedAt = now;
    let fh: FileHandle | undefined;
    let offset = 0;

    try {
      if (storedRef !== undefined) {
        const storedTotal = await readTotal(dir);
        const storedExpected = await readExpected(dir);
        if (total !== 0 && storedTotal !== 0 && total !== storedTotal) {
          throw new FailedPreconditionError(`ingest ${JSON.stringify(ref)} was started with total ${storedTotal}, reopened with ${total}`, {
            details: { ref, total, storedTotal },
          });
        }
        if (expected !== undefined && storedExpected !== undefined && expected !== storedExpected) {
          throw new FailedPreconditionError(`ingest ${JSON.stringify(ref)} was started expecting ${storedExpected}, reopened expecting ${expected}`, {
            details: { ref, expected, storedExpected },
          });
        }
        if (total === 0) total = storedTotal;
        else if (storedTotal === 0) await writeFileAtomic(ingestFile(dir, "total"), String(total));
        if (expected === undefined) expected = storedExpected;
        else if (storedExpected === undefined) await writeFileAtomic(ingestFile(dir, "expected"), expected);
        startedAt = (await readTime(ingestFile(dir, "startedAt"))) ?? now;
        updatedAt = (await readTime(ingestFile(dir, "updatedAt"))) ?? startedAt;
        const kept = await openKeptData(dir);
        fh = kept.fh;
        if (kept.published) {
          await unlinkIfExists(ingestFile(dir, "hashState"));
        } else {
          const st = await fh.stat();
          offset = st.size;
          const mtime = Math.floor(st.mtimeMs);
          if (mtime > updatedAt.getTime()) updatedAt = new Date(mtime);
        }
      } else {
        // New ingest (or one whose creation was interrupted): reset every file, `ref` last. Only
        // `ref` needs an atomic write: until it exists, readers and reopeners ignore (and reset)
        // the directory, so the files before it are written in place (3 syscalls instead of 4).
        fh = await openData(dir, true);
        await unlinkIfExists(ingestFile(dir, "hashState"));
        await writeFile(ingestFile(dir, "total"), String(total));
        if (expected !== undefined) await writeFile(ingestFile(dir, "expected"), expected);
        else await unlinkIfExists(ingestFile(dir, "expected"));
        const started = startedAt.toISOString();
        await writeFile(ingestFile(dir, "startedAt"), started);
        await writeFile(ingestFile(dir, "updatedAt"), started);
        await writeFileAtomic(ingestFile(dir, "ref"), ref);
      }
    } catch (err) {
      // A file opened before the failure (EMFILE on the next one, say) is closed here, not by
      // the garbage collector.
      await fh?.close().catch(() => {});
      throw err;
    }

    try {
      const algorithm = expected === undefined ? "sha256" : digestAlgorithm(expected);
      let digester: Digester | undefined;
      let offload: OffloadedIngest | undefined;
      /** The O_DIRECT handle the worker-backed path writes aligned batches through. */
      let offloadDirect: FileHandle | undefined;
      let restored = 0;
      if (ctx.digesters === nodeDigesters && total >= (ctx.hashWorkerMinBytes ?? HASH_WORKER_MIN_BYTES)) {
        // node:crypto cannot checkpoint, so a resume re-hashes the data either way: the worker does it.
        if (storedRef !== undefined) await unlinkIfExists(ingestFile(dir, "hashState"));
        offloadDirect = total >= ctx.directWriteMinBytes ? await openDirectHandle(ctx, dir) : undefined;
        try {
          offload = await OffloadedIngest.open(HashWorkerPool.shared(), {
            fh,
            algorithm,
            offset,
            batchBytes: ctx.writeBatchBytes,
            maxInFlight: HASH_WORKER_IN_FLIGHT,
            ...(offloadDirect !== undefined ? { direct: { fh: offloadDirect, refused: () => (ctx.direct.supported = false) } } : {}),
          });
        } catch (err) {
          await offloadDirect?.close();
          throw err;
        }
      } else {
        ({ digester, restored } = await rebuildDigester(ctx.digesters, dir, fh, algorithm, offset, o.signal, storedRef === undefined));
      }
      const direct = offload === undefined && total >= ctx.directWriteMinBytes ? await openDirect(ctx, dir, fh, offset) : undefined;
      return new FsWriter({
        ctx,
        ref,
        dir,
        lock: o.lock,
        fh,
        digester,
        offload,
        algorithm,
        total,
        expected,
        startedAt,
        updatedAt,
        offset,
        checkpointed: restored,
        resumed: { offset, restoredFromCheckpoint: restored },
        signal: o.signal,
        ...(direct !== undefined ? { direct } : {}),
        ...(offloadDirect !== undefined ? { offloadDirect } : {}),
      });
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  write(chunk: Uint8Array): Promise<void> {
    // Fast path: nothing queued and the chunk fits in the batch being filled, so hashing (on
    // this thread or the worker's) and copying it is all there is to do. Runs in place of three
    // promise hops per chunk (the queue, its catch, the async body); same results as the queue.
    if (this.#queued === 0 && this.#broken === undefined && !this.#closed && !this.#signal?.aborted) {
      const n = chunk.byteLength;
      const off = this.#offload;
      if (off !== undefined) {
        if (off.stageSync(chunk)) {
          this.#offset += n;
          this.#updatedAt = Date.now();
          return RESOLVED;
        }
      } else if (this.#direct) {
        const at = this.#lead + this.#staged;
        if (at + n < this.#staging!.byteLength) {
          this.#offset += n;
          this.#updatedAt = Date.now();
          this.#digester!.update(chunk);
          if (!inPlace(chunk, this.#staging!, at)) this.#staging!.set(chunk, at);
          this.#staged += n;
          return RESOLVED;
        }
      } else if (this.#staged + n < this.#ctx.writeBatchBytes) {
        this.#offset += n;
        this.#updatedAt = Date.now();
        try {
          this.#stage(chunk);
        } catch (err) {
          this.#broken = err;
          return Promise.reject(err);
        }
        return RESOLVED;
      }
    }
    return this.#serial(async () => {
      this.#usable();
      throwIfAborted(this.#signal);
      const n = chunk.byteLength;
      if (n === 0) return;
      this.#offset += n;
      this.#updatedAt = Date.now();
      if (this.#offload !== undefined) {
        try {
          return await this.#offload.write(chunk);
        } catch (err) {
          // The worker's hash may be ahead of the file now; only a reopen can recover.
          this.#broken = err;
          throw err;
        }
      }
      if (this.#direct) return await this.#writeDirect(chunk);
      const digester = this.#digester!;
      const batch = this.#ctx.writeBatchBytes;
      if (this.#staged + n < batch) {
        this.#stage(chunk);
        return;
      }
      // One writev of the staged bytes plus this chunk (at least writeBatchBytes), hashed on
      // this thread while the write runs in the thread pool.
      const written = this.#writeOut(this.#staging && this.#staged > 0 ? [this.#staging.subarray(0, this.#staged), chunk] : [chunk]);
      digester.update(chunk);
      await written;
      this.#staged = 0;
      await this.#maybeCheckpoint(false);
    });
  }

  /**
   * Write the staged batch to the ingest file (no fsync): a process that reopens the ingest after
   * this one dies finds every byte accepted so far. A saving digester also checkpoints here, so
   * that reopen restores the hash at this offset instead of re-hashing up to checkpointBytes
   * (callers flush at their chunk boundaries, e.g. a registry before each PATCH's 202).
   */
  flush(): Promise<void> {
    return this.#serial(async () => {
      this.#usable();
      await this.#flush();
      await this.#maybeCheckpoint(true);
    });
  }

  digest(): Digest {
    if (this.#offload !== undefined) {
      try {
        return this.#offload.digestSync();
      } catch (err) {
        // The worker's hash state is gone (or unreachable): as after a failed write, the writer
        // is done; a reopen resumes from the file.
        this.#broken ??= err;
        throw err;
      }
    }
    if (this.#digester === undefined) {
      if (this.#finalDigest !== undefined) return this.#finalDigest;
      throw new FailedPreconditionError(`writer for ${JSON.stringify(this.ref)} is closed`);
    }
    return this.#digester.digest();
  }

  async status(): Promise<Status> {
    const s: Status = {
      ref: this.ref,
      offset: this.#offset,
      total: this.#total,
      startedAt: this.#startedAt,
      updatedAt: new Date(this.#updatedAt),
    };
    if (this.#expected !== undefined) s.expected = this.#expected;
    return s;
  }

  truncate(size: 0): Promise<void> {
    return this.#serial(async () => {
      if (size !== 0) throw new InvalidArgumentError(`only truncate(0) is supported, got ${size}`);
      if (this.#closed) throw new FailedPreconditionError(`writer for ${JSON.stringify(this.ref)} is closed`);
      const fh = this.#fh!;
      // Nothing may still be writing into the file we are about to empty.
      await this.#offload?.settle();
      await this.#inflight;
      this.#inflight = undefined;
      // Checkpoint first: a crash in between must not leave a state that claims old bytes.
      await unlinkIfExists(ingestFile(this.#dir, "hashState"));
      await fh.truncate(0);
      if (this.#offload !== undefined) await this.#offload.reset();
      else this.#digester = await newDigester(this.#ctx.digesters, this.#algorithm);
      this.#staged = 0;
      this.#lead = 0;
      this.#offset = 0;
      this.#flushed = 0;
      this.#checkpointed = 0;
      this.#broken = undefined;
      this.#updatedAt = Date.now();
    });
  }

  commit(size?: number, expected?: Digest, options: CommitOptions = {}): Promise<void> {
    return this.#serial(async () => {
      if (this.#closed) throw new FailedPreconditionError(`writer for ${JSON.stringify(this.ref)} is closed`);
      let published = false;
      try {
        this.#usable();
        if (size !== undefined && (!Number.isSafeInteger(size) || size < 0)) throw new InvalidArgumentError(`commit size must be a non-negative integer, got ${size}`);
        const wanted = expected === undefined ? undefined : parseDigest(expected);
        const labels = validateLabels(options.labels);
        await this.#flush();
        if (size !== undefined && size !== this.#offset) {
          throw new SizeMismatchError(`ingest ${JSON.stringify(this.ref)} has ${this.#offset} bytes, commit expected ${size}`, {
            details: { ref: this.ref, size: this.#offset, expected: size },
          });
        }
        const digest = await this.#verify([wanted, this.#expected]);
        if (!(await this.#lock.stillHeld())) {
          throw new LockedError(`ingest ${JSON.stringify(this.ref)}: the lock was taken over by another process`);
        }
        await this.#publish(digest, labels);
        published = true;
      } finally {
        if (!published) await this.#close();
      }
    });
  }

  close(): Promise<void> {
    return this.#serial(() => this.#close());
  }

  // -- internals -------------------------------------------------------------------------

  /**
   * The staging buffer, with room for `need` bytes. A blob declared much smaller than a batch
   * gets a buffer of its own size (many small blobs in flight would otherwise pin a batch
   * each); others take a batch-sized one from the store's pool.
   */
  #stagingFor(need: number, batch: number): Buffer {
    const cur = this.#staging;
    if (cur !== undefined && cur.byteLength >= need) return cur;
    const left = this.#total - (this.#offset - need); // bytes still to come from the staging start
    const next = this.#total > 0 && left >= need && left <= batch / 4 ? Buffer.allocUnsafe(left) : this.#ctx.staging.take();
    if (cur !== undefined) {
      if (this.#staged > 0) cur.copy(next, 0, 0, this.#staged);
      this.#ctx.staging.give(cur);
    }
    this.#staging = next;
    return next;
  }

  /** Hash `chunk` and copy it into the staging batch (the caller checked that it fits). */
  #stage(chunk: Uint8Array): void {
    const n = chunk.byteLength;
    this.#digester!.update(chunk);
    // Copy: the caller may reuse its buffer as soon as its write resolves.
    const staging = this.#stagingFor(this.#staged + n, this.#ctx.writeBatchBytes);
    staging.set(chunk, this.#staged);
    this.#staged += n;
  }

  /** Hand the staging buffer back to the pool (only once no write can use it any more). */
  #releaseStaging(): void {
    if (this.#staging !== undefined) (this.#direct ? this.#ctx.directStaging : this.#ctx.staging).give(this.#staging);
    if (this.#spare !== undefined) this.#ctx.directStaging.give(this.#spare);
    this.#spare = undefined;
    this.#staging = undefined;
    this.#staged = 0;
  }


  async #closeDirect(): Promise<void> {
    const direct = this.#directFh;
    this.#directFh = undefined;
    await direct?.close();
  }

  /** Forget the worker's side of the ingest (nothing of it is in flight any more). */
  #releaseOffload(): void {
    this.#offload?.release();
    this.#offload = undefined;
  }

  /** Run operations one at a time, in call order. */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    this.#queued++;
    const run = this.#queue.then(fn, fn).finally(() => {
      this.#queued--;
    });
    this.#queue = run.catch(() => {});
    return run;
  }

  #usable(): void {
    if (this.#closed) throw new FailedPreconditionError(`writer for ${JSON.stringify(this.ref)} is closed`);
    if (this.#broken !== undefined) {
      throw new FailedPreconditionError(`writer for ${JSON.stringify(this.ref)} failed earlier; close and reopen it to resume`, { cause: this.#broken });
    }
  }

  async #writeOut(buffers: Uint8Array[]): Promise<void> {
    const fh = this.#fh!;
    try {
      let pos = this.#flushed;
      let bufs = buffers.filter((b) => b.byteLength > 0);
      while (bufs.length > 0) {
        const { bytesWritten } = await fh.writev(bufs, pos);
        pos += bytesWritten;
        // Drop what was written; a short write leaves a tail to retry.
        let skip = bytesWritten;
        const rest: Uint8Array[] = [];
        for (const b of bufs) {
          if (skip >= b.byteLength) skip -= b.byteLength;
          else {
            rest.push(skip > 0 ? b.subarray(skip) : b);
            skip = 0;
          }
        }
        bufs = rest;
      }
      this.#flushed = pos;
    } catch (err) {
      // The hash is ahead of the file now; only a reopen (which re-reads the file) can recover.
      this.#broken = err;
      throw err;
    }
  }

  async #flush(): Promise<void> {
    if (this.#offload !== undefined) {
      try {
        await this.#offload.flush();
      } catch (err) {
        this.#broken = err;
        throw err;
      }
      this.#flushed = this.#offload.written;
      return;
    }
    if (this.#direct) return this.#flushDirect();
    if (this.#staged === 0) return;
    await this.#writeOut([this.#staging!.subarray(0, this.#staged)]);
    this.#staged = 0;
  }

  /**
   * Direct mode, slow path of write(): fill the aligned batch, hand it to the thread pool as one
   * O_DIRECT write and go on filling the other batch while it runs (at most one batch in flight
   * per writer: the next full batch waits for it). #flushed counts a batch once it is issued;
   * everything that needs the bytes on disk (flush, commit, close, truncate) settles it first.
   * A batch at whose end a hash checkpoint is due is written and awaited before the rest of
   * the chunk is hashed, so the saved state matches the bytes on disk.
   */
  async #writeDirect(chunk: Uint8Array): Promise<void> {
    const digester = this.#digester!;
    let rest = chunk;
    for (;;) {
      const staging = this.#staging!;
      const batch = staging.byteLength;
      const at = this.#lead + this.#staged;
      const room = batch - at;
      if (rest.byteLength < room) {
        digester.update(rest);
        if (!inPlace(rest, staging, at)) staging.set(rest, at);
        this.#staged += rest.byteLength;
        return;
      }
      const fill = rest.subarray(0, room);
      rest = rest.subarray(room);
      digester.update(fill);
      if (!inPlace(fill, staging, at)) staging.set(fill, at);
      const base = this.#flushed - this.#lead;
      // The other batch may still be on its way to disk: it must land before this one is
      // issued (one write in flight) and before its buffer is filled again.
      await this.#settleInflight();
      // The second batch is optional: only while the store's batches stay within its budget.
      this.#spare ??= takeAligned(this.#ctx, this.#ctx.directSpareLimit);
      if (this.#checkpointDue(base + batch) || rest.byteLength >= batch || this.#spare === undefined) {
        await this.#directOut(staging, batch, base);
        this.#flushed = base + batch;
        this.#lead = 0;
        this.#staged = 0;
        await this.#maybeCheckpoint(false);
        continue;
      }
      // Never rejects: a failure is kept in #broken and thrown by the next settle.
      this.#inflight = this.#directOut(staging, batch, base).catch(() => {});
      this.#flushed = base + batch;
      this.#lead = 0;
      const next = this.#spare;
      this.#spare = staging;
      this.#staging = next;
      digester.update(rest);
      next.set(rest, 0);
      this.#staged = rest.byteLength;
      return;
    }
  }

  /** Wait for the batch in flight (direct mode); throws its failure. */
  async #settleInflight(): Promise<void> {
    const inflight = this.#inflight;
    if (inflight === undefined) return;
    await inflight;
    this.#inflight = undefined;
    if (this.#broken !== undefined) throw this.#broken;
  }

  /**
   * Direct mode: write everything staged. Whole blocks go with O_DIRECT, the partial last block
   * through the page cache; that block's head stays at the start of the staging buffer (the
   * new #lead) so the next batch starts on a block boundary again.
   */
  async #flushDirect(): Promise<void> {
    await this.#settleInflight();
    if (this.#staged === 0) return;
    const staging = this.#staging!;
    const base = this.#flushed - this.#lead;
    const end = this.#lead + this.#staged;
    const whole = end - (end % DIRECT_ALIGN);
    if (whole > this.#lead) await this.#directOut(staging, whole, base);
    const from = Math.max(whole, this.#lead);
    if (end > from) {
      try {
        await writeAll(this.#fh!, staging, from, end, base + from);
      } catch (err) {
        this.#broken = err;
        throw err;
      }
    }
    this.#flushed = base + end;
    this.#staged = 0;
    this.#lead = end - whole;
    if (this.#lead > 0 && whole > 0) staging.copyWithin(0, whole, end);
  }

  /**
   * Write buf[0, len) at the aligned file offset `base` with O_DIRECT (len a multiple of
   * DIRECT_ALIGN, or the end of the data). A filesystem that refuses (EINVAL) gets the same
   * bytes through the page cache, and this store stops trying.
   */
  async #directOut(buf: Buffer, len: number, base: number): Promise<void> {
    try {
      const direct = this.#directFh;
      if ((await writePreferDirect(direct, this.#fh!, buf, len, base)) === "refused") {
        this.#ctx.direct.supported = false;
        this.#directFh = undefined;
        await direct!.close().catch(() => {});
      }
    } catch (err) {
      this.#broken = err;
      throw err;
    }
  }

  /** A hash checkpoint would be written once the data reaches `at` bytes. */
  #checkpointDue(at: number): boolean {
    return this.#digester?.save !== undefined && at - this.#checkpointed >= this.#ctx.checkpointBytes;
  }

  /** Save the hash state when the digester can, at most once per checkpointBytes (or forced). */
  async #maybeCheckpoint(force: boolean): Promise<void> {
    const save = this.#digester?.save;
    if (save === undefined || this.#staged !== 0) return;
    const since = this.#flushed - this.#checkpointed;
    if (since <= 0 || (!force && since < this.#ctx.checkpointBytes)) return;
    const state = save.call(this.#digester!);
    await writeFileAtomic(
      ingestFile(this.#dir, "hashState"),
      encodeCheckpoint({ algorithm: this.#algorithm, offset: this.#flushed, state }),
    );
    this.#checkpointed = this.#flushed;
  }

  /** The digest of the data, checked against every wanted digest given. */
  async #verify(wanted: Array<Digest | undefined>): Promise<Digest> {
    const own = this.#offload !== undefined ? await this.#offload.digest() : this.#digester!.digest();
    this.#finalDigest = own;
    return verifyDigests(this.ref, { digest: own, algorithm: this.#algorithm }, wanted, (alg) => this.#hashFile(alg));
  }

  async #hashFile(algorithm: DigestAlgorithm): Promise<Digest> {
    const d = await newDigester(this.#ctx.digesters, algorithm);
    await hashRange(this.#fh!, d, 0, this.#flushed, this.#signal);
    return d.digest();
  }

  async #publish(digest: Digest, labels: Record<string, string>): Promise<void> {
    const { layout, fsync, meta } = this.#ctx;
    const fh = this.#fh!;
    const now = new Date();
    const bare = Object.keys(labels).length === 0;
    // A blob without labels needs no metadata file: its mtime is its createdAt/updatedAt (see
    // blob-meta.ts). Pin the mtime to our clock (the kernel's file clock is coarser and may lag
    // behind Date.now()); one syscall instead of mkdir + a temp file + rename.
    if (bare) await fh.utimes(now, now);
    if (fsync) await fh.sync();
    this.#releaseOffload();
    await this.#closeDirect();
    await fh.close();
    this.#fh = undefined;
    this.#releaseStaging();
    const data = ingestFile(this.#dir, "data");
    const target = layout.blobPath(digest);
    // Read-only before it becomes visible: nobody can open a committed blob for writing.
    await chmod(data, 0o444);
    try {
      await linkBlob(data, target, digest, this.ref);
    } catch (err) {
      // Not published: the ingest stays (closed, unlocked) so the caller can abort or retry.
      await chmod(data, 0o644).catch(() => {});
      throw err;
    }
    if (fsync) await fsyncDirShared(dirname(target));
    await recordCommitMeta(meta, digest, labels, now);
    await this.#removeIngest();
  }

  /** Remove the whole ingest directory (its lock file goes with it). */
  async #removeIngest(): Promise<void> {
    this.#closed = true;
    // Rename first so a concurrent opener never sees a half-deleted directory.
    const trash = join(this.#ctx.layout.ingestDir, `.trash-${randomToken()}`);
    try {
      await rename(this.#dir, trash);
      this.#lock.forget();
      // A fresh ingest that never checkpointed has no hashstate: skip one failing unlink.
      const names = this.resumed.offset === 0 && this.#checkpointed === 0 ? INGEST_FILE_NAMES.filter((n) => n !== IngestFiles.hashState) : INGEST_FILE_NAMES;
      await removeDirOf(trash, names);
    } catch (err) {
      await this.#lock.release();
      if (!isENOENT(err)) throw err;
    } finally {
      this.#ctx.onClosed(this);
    }
  }

  async #close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      // A direct batch still being written must land (or fail) before the file is closed.
      await this.#inflight;
      if (this.#fh !== undefined) {
        if (this.#broken === undefined) {
          await this.#flush();
          await this.#maybeCheckpoint(true);
          const updatedAt = new Date(this.#updatedAt);
          await writeFileAtomic(ingestFile(this.#dir, "updatedAt"), updatedAt.toISOString());
          // The data's mtime also counts as "updated" for other readers; pin it to our clock.
          await this.#fh.utimes(updatedAt, updatedAt);
        }
        await this.#offload?.settle();
        this.#releaseOffload();
        await this.#closeDirect();
        await this.#fh.close();
        this.#fh = undefined;
      }
    } finally {
      await this.#closeDirect().catch(() => {});
      if (this.#fh !== undefined) {
        // Never close a file the worker may still be writing into.
        await this.#offload?.settle();
        this.#releaseOffload();
        await this.#fh.close().catch(() => {});
      }
      this.#fh = undefined;
      this.#releaseStaging();
      await this.#lock.release();
      this.#ctx.onClosed(this);
    }
  }
}

/**
 * Open a kept ingest's data to go on writing. A commit makes the file read-only, links it into
 * `blobs/`, then removes the ingest; a crash in between leaves either a published blob (more
 * than one link: never to be written to, so it is unlinked here and the ingest starts over) or
 * a read-only file never linked (made writable again: only root could open it as it is).
 * Checked before opening, by path: an open for writing fails on a read-only file.
 */
async function openKeptData(dir: string): Promise<{ fh: FileHandle; published: boolean }> {
  const path = ingestFile(dir, "data");
  const st = await lstat(path).catch((err: unknown) => {
    if (isENOENT(err)) return undefined;
    throw err;
  });
  if (st !== undefined && st.nlink > 1) {
    await unlink(path);
    return { fh: await openData(dir, true), published: true };
  }
  if (st !== undefined && (st.mode & 0o200) === 0) await chmod(path, 0o644);
  return { fh: await openData(dir, false), published: false };
}

async function openData(dir: string, fresh: boolean): Promise<FileHandle> {
  const path = ingestFile(dir, "data");
  if (fresh) return open(path, "w+", 0o644);
  try {
    return await open(path, "r+");
  } catch (err) {
    if (isENOENT(err)) return open(path, "w+", 0o644);
    throw err;
  }
}

/**
 * The running digest of the first `offset` bytes: from a saved checkpoint plus the tail when
 * one is usable, else by re-reading everything.
 */
async function rebuildDigester(
  factory: DigesterFactory,
  dir: string,
  fh: FileHandle,
  algorithm: DigestAlgorithm,
  offset: number,
  signal: AbortSignal | undefined,
  /** A new ingest: its checkpoint was just removed. */
  fresh: boolean,
): Promise<{ digester: Digester; restored: number }> {
  let digester: Digester | undefined;
  let restored = 0;
  if (offset > 0) {
    const cp = await readCheckpoint(dir);
    if (cp !== undefined && cp.algorithm === algorithm && cp.offset <= offset && cp.offset > 0) {
      try {
        digester = await restoreDigester(factory, algorithm, cp.state);
        if (digester !== undefined) restored = cp.offset;
      } catch {
        digester = undefined; // state from another build: fall back to re-hashing
      }
    }
  }
  if (digester === undefined) {
    // An unusable checkpoint must not be picked up by a later reopen either.
    if (!fresh) await unlinkIfExists(ingestFile(dir, "hashState"));
    digester = await newDigester(factory, algorithm);
  }
  await hashRange(fh, digester, restored, offset, signal);
  return { digester, restored };
}

async function hashRange(fh: FileHandle, d: Digester, from: number, to: number, signal: AbortSignal | undefined): Promise<void> {
  if (from >= to) return;
  const buf = Buffer.allocUnsafe(Math.min(REHASH_CHUNK, to - from));
  let pos = from;
  while (pos < to) {
    throwIfAborted(signal);
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.byteLength, to - pos), pos);
    if (bytesRead === 0) throw new FailedPreconditionError(`ingest data ended at ${pos} bytes while re-hashing up to ${to}`);
    d.update(buf.subarray(0, bytesRead));
    pos += bytesRead;
  }
}

/**
 * Open the ingest's data file a second time with O_DIRECT, with an aligned staging buffer whose
 * head holds the partial block at `offset` (a resumed ingest may end mid-block). Undefined when
 * the platform or filesystem has no O_DIRECT; the store then stops trying.
 */
async function openDirect(
  ctx: WriterContext,
  dir: string,
  fh: FileHandle,
  offset: number,
): Promise<{ fh: FileHandle; staging: Buffer; lead: number } | undefined> {
  const direct = await openDirectHandle(ctx, dir);
  if (direct === undefined) return undefined;
  const staging = takeAligned(ctx);
  if (staging === undefined) {
    await direct.close();
    return undefined;
  }
  try {
    const lead = offset % DIRECT_ALIGN;
    if (lead > 0) {
      const { bytesRead } = await fh.read(staging, 0, lead, offset - lead);
      if (bytesRead !== lead) throw new FailedPreconditionError(`ingest data ended at ${offset - lead + bytesRead} bytes, expected ${offset}`);
    }
    return { fh: direct, staging, lead };
  } catch (err) {
    ctx.directStaging.give(staging);
    await direct.close();
    throw err;
  }
}

/**
 * An aligned batch from the store's pool, or undefined when the memory cannot be had (a
 * WebAssembly memory is a large address-space reservation) or `maxOut` batches are out already:
 * the writer then does without.
 */
function takeAligned(ctx: WriterContext, maxOut = Infinity): Buffer | undefined {
  try {
    return ctx.directStaging.takeWithin(maxOut);
  } catch {
    return undefined;
  }
}

/** The ingest's data file opened with O_DIRECT, or undefined where that is refused (the store then stops trying). */
async function openDirectHandle(ctx: WriterContext, dir: string): Promise<FileHandle | undefined> {
  const flag = fsConstants.O_DIRECT;
  if (!ctx.direct.supported || typeof flag !== "number") return undefined;
  try {
    return await open(ingestFile(dir, "data"), fsConstants.O_WRONLY | flag);
  } catch (err) {
    if (errno(err) === "EINVAL") ctx.direct.supported = false;
    return undefined;
  }
}
