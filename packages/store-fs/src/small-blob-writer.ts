/**
 * The small-blob fast path: a writer whose declared total is at most `smallBlobBytes`, opened
 * on a ref with no ingest on disk, keeps its bytes in a buffer of that size and touches no disk
 * until commit, which writes one file and links it into `blobs/` (about 8 syscalls instead of
 * the ~55 of an on-disk ingest: directory, lock, seven small files, their removal).
 *
 * Nothing a caller relies on changes:
 * - Commit verifies size and digest, fsyncs the file, links it (`link(2)` fails on an existing
 *   target: `AlreadyExists`), and returns once the directory fsync covering the link is done.
 * - Whatever does not end in a successful commit (close, a failed commit, `flush()`, more bytes
 *   than declared) first "spills" the bytes into a regular on-disk ingest with the same
 *   `startedAt`/`updatedAt`, so a later writer (in any process) resumes it exactly as before.
 *   Overflow and `flush()` continue through a regular {@link FsWriter} on that ingest.
 * - One writer per ref: the process-wide {@link heldIngestsOf} registry refuses a second writer
 *   (`Locked`) through any handle on the root. Another *process* does not see an in-memory
 *   ingest; two processes racing a new small ref both write it, and one `link` wins (same
 *   digest, same bytes): the other gets `AlreadyExists`, as two refs of one digest always did.
 *   If another process created an ingest of this ref meanwhile, a spill leaves that one alone
 *   (its owner's bytes win; ours were never acknowledged as stored).
 */
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import {
  FailedPreconditionError,
  InvalidArgumentError,
  SizeMismatchError,
  digestAlgorithm,
  parseDigest,
  throwIfAborted,
  type CommitOptions,
  type Digest,
  type DigestAlgorithm,
  type Digester,
  type Status,
  type Writer,
} from "@ferry/core";
import { validateLabels } from "./blob-meta.ts";
import { newDigester } from "./digesters.ts";
import { closeFd, fsyncFd, futimesFd, openFd, pwriteAll, unlinkPath } from "./fd-calls.ts";
import { FileLock, lockedError } from "./file-lock.ts";
import { fsyncDirShared, isEEXIST, isENOENT, randomToken, readOptional, unlinkIfExists, writeFileAtomic } from "./fs-util.ts";
import { FsWriter, type ResumeInfo, type WriterContext } from "./fs-writer.ts";
import { linkBlob, recordCommitMeta } from "./link-blob.ts";
import { verifyDigests } from "./verify-digests.ts";
import { ingestFile } from "./ingest-files.ts";

/** Prefix of the temporary files small commits write in `ingest/` before linking them. */
export const SMALL_TEMP_PREFIX = ".blob-";

/**
 * `expireIngests` leaves a small commit's temp file alone until it is this old, whatever idle
 * time it is given: the file lives from the commit's start to its link, and nothing says which
 * process (in which PID namespace) owns it. A commit taking this long has a broken disk; a
 * crash's leftover is one small file.
 */
export const SMALL_TEMP_MIN_AGE_MS = 10 * 60_000;

export interface SmallBlobWriterInit {
  ctx: WriterContext;
  ref: string;
  total: number;
  expected: Digest | undefined;
  signal: AbortSignal | undefined;
  /** Called once the writer is done (committed, closed, or handed its ref to an FsWriter that closed). */
  onDone(writer: SmallBlobWriter): void;
}

export class SmallBlobWriter implements Writer {
  readonly ref: string;
  readonly resumed: ResumeInfo = { offset: 0, restoredFromCheckpoint: 0 };
  readonly #ctx: WriterContext;
  readonly #onDone: (w: SmallBlobWriter) => void;
  readonly #signal: AbortSignal | undefined;
  readonly #total: number;
  readonly #expected: Digest | undefined;
  readonly #algorithm: DigestAlgorithm;
  readonly #startedAt = new Date();
  #updatedAt = this.#startedAt;
  #buf: Buffer;
  #offset = 0;
  #digester: Digester;
  /** The regular writer the bytes were spilled into by an overflow or a flush. */
  #inner: FsWriter | undefined;
  #closed = false;
  #done = false;
  #queue: Promise<unknown> = Promise.resolve();

  /** Open a small-blob writer (its ref must already be reserved in the held registry). */
  static async open(init: SmallBlobWriterInit): Promise<SmallBlobWriter> {
    const algorithm = init.expected === undefined ? "sha256" : digestAlgorithm(init.expected);
    return new SmallBlobWriter(init, algorithm, await newDigester(init.ctx.digesters, algorithm));
  }

  private constructor(init: SmallBlobWriterInit, algorithm: DigestAlgorithm, digester: Digester) {
    this.ref = init.ref;
    this.#ctx = init.ctx;
    this.#onDone = init.onDone;
    this.#signal = init.signal;
    this.#total = init.total;
    this.#expected = init.expected;
    this.#algorithm = algorithm;
    this.#digester = digester;
    this.#buf = Buffer.allocUnsafe(init.total);
  }

  /** True while the bytes live only in memory. */
  get inMemory(): boolean {
    return this.#inner === undefined && !this.#closed;
  }

  write(chunk: Uint8Array): Promise<void> {
    return this.#serial(async () => {
      if (this.#inner) return this.#inner.write(chunk);
      this.#usable();
      throwIfAborted(this.#signal);
      const n = chunk.byteLength;
      if (n === 0) return;
      if (this.#offset + n > this.#total) {
        // More than declared: continue as a regular ingest, which accepts any length.
        await this.#spill(true);
        return this.#inner!.write(chunk);
      }
      this.#digester.update(chunk);
      this.#buf.set(chunk, this.#offset);
      this.#offset += n;
      this.#updatedAt = new Date();
    });
  }

  /** A flush promises that a reopen finds every accepted byte: that needs the disk. */
  flush(): Promise<void> {
    return this.#serial(async () => {
      if (this.#inner) return this.#inner.flush();
      this.#usable();
      await this.#spill(true);
    });
  }

  digest(): Digest {
    return this.#inner ? this.#inner.digest() : this.#digester.digest();
  }

  async status(): Promise<Status> {
    if (this.#inner) return this.#inner.status();
    const s: Status = { ref: this.ref, offset: this.#offset, total: this.#total, startedAt: this.#startedAt, updatedAt: this.#updatedAt };
    if (this.#expected !== undefined) s.expected = this.#expected;
    return s;
  }

  truncate(size: 0): Promise<void> {
    return this.#serial(async () => {
      if (this.#inner) return this.#inner.truncate(size);
      if (size !== 0) throw new InvalidArgumentError(`only truncate(0) is supported, got ${size}`);
      this.#usable();
      this.#digester = await newDigester(this.#ctx.digesters, this.#algorithm);
      this.#offset = 0;
      this.#updatedAt = new Date();
    });
  }

  commit(size?: number, expected?: Digest, options: CommitOptions = {}): Promise<void> {
    return this.#serial(async () => {
      if (this.#inner) {
        try {
          return await this.#inner.commit(size, expected, options);
        } finally {
          this.#finish();
        }
      }
      this.#usable();
      let published = false;
      try {
        if (size !== undefined && (!Number.isSafeInteger(size) || size < 0)) throw new InvalidArgumentError(`commit size must be a non-negative integer, got ${size}`);
        const wanted = expected === undefined ? undefined : parseDigest(expected);
        const labels = validateLabels(options.labels);
        if (size !== undefined && size !== this.#offset) {
          throw new SizeMismatchError(`ingest ${JSON.stringify(this.ref)} has ${this.#offset} bytes, commit expected ${size}`, {
            details: { ref: this.ref, size: this.#offset, expected: size },
          });
        }
        const digest = await this.#verify([wanted, this.#expected]);
        await this.#publish(digest, labels);
        published = true;
      } finally {
        // Not published: keep the bytes as a resumable (closed, unlocked) ingest, as a regular
        // writer's failed commit does.
        if (!published) await this.#spill(false).catch(() => {});
        this.#finish();
      }
    });
  }

  close(): Promise<void> {
    return this.#serial(async () => {
      if (this.#closed) return;
      try {
        if (this.#inner) await this.#inner.close();
        else await this.#spill(false);
      } finally {
        this.#finish();
      }
    });
  }

  // -- internals -------------------------------------------------------------------------

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => {});
    return run;
  }

  #usable(): void {
    if (this.#closed) throw new FailedPreconditionError(`writer for ${JSON.stringify(this.ref)} is closed`);
  }

  /** Closed for good: free the bytes and the ref (once). */
  #finish(): void {
    this.#closed = true;
    this.#buf = EMPTY;
    if (this.#done) return;
    this.#done = true;
    this.#onDone(this);
  }

  async #verify(wanted: Array<Digest | undefined>): Promise<Digest> {
    return verifyDigests(this.ref, { digest: this.#digester.digest(), algorithm: this.#algorithm }, wanted, async (alg) => {
      const d = await newDigester(this.#ctx.digesters, alg);
      d.update(this.#buf.subarray(0, this.#offset));
      return d.digest();
    });
  }

  /**
   * Write the bytes to a read-only temp file in `ingest/` and link it into `blobs/`. The temp
   * lives outside `blobs/` so a crash never leaves a stranger there for OCI tools to trip on;
   * `expireIngests` removes stale ones.
   */
  async #publish(digest: Digest, labels: Record<string, string>): Promise<void> {
    const { layout, fsync, meta } = this.#ctx;
    const now = new Date();
    const bare = Object.keys(labels).length === 0;
    const target = layout.blobPath(digest);
    const tmp = join(layout.ingestDir, `${SMALL_TEMP_PREFIX}${randomToken()}.tmp`);
    // Mode 0444 at creation: the descriptor is writable, the file never is.
    const fd = await openFd(tmp, "wx", 0o444);
    try {
      try {
        await pwriteAll(fd, this.#buf, this.#offset, 0);
        // A bare blob's mtime is its createdAt (see blob-meta.ts): pin it to our clock.
        if (bare) await futimesFd(fd, now, now);
        if (fsync) await fsyncFd(fd);
      } finally {
        await closeFd(fd);
      }
      await linkBlob(tmp, target, digest, this.ref);
    } catch (err) {
      await unlinkIfExists(tmp).catch(() => {});
      throw err;
    }
    // The temp name goes while the directory fsync runs; only the link needs to be durable.
    // (Gone already is fine: the blob is published, whoever removed the name.)
    await Promise.all([unlinkIfExists(tmp), fsync ? fsyncDirShared(dirname(target)) : undefined]);
    await recordCommitMeta(meta, digest, labels, now);
  }

  /**
   * Turn the in-memory bytes into a regular on-disk ingest, with this writer's times, so that
   * any later writer resumes it. `keepOpen` continues through an {@link FsWriter} on it;
   * otherwise the ingest is left closed and unlocked.
   */
  async #spill(keepOpen: boolean): Promise<void> {
    const { layout, staleLockMs } = this.#ctx;
    const dir = layout.ingestPath(this.ref);
    let existed = false;
    let got: Awaited<ReturnType<typeof FileLock.tryAcquire>> | undefined;
    for (let attempt = 0; got === undefined; attempt++) {
      try {
        existed = false;
        try {
          await mkdir(dir);
        } catch (err) {
          if (!isEEXIST(err)) throw err;
          existed = true;
        }
        got = await FileLock.tryAcquire(ingestFile(dir, "lock"), { staleMs: staleLockMs });
      } catch (err) {
        // Removed between the two (another process expiring or aborting it): create it again.
        if (isENOENT(err) && attempt < 10) continue;
        throw err;
      }
    }
    if (!got.lock) {
      // Another process started an ingest of this ref meanwhile and holds it: leave it be.
      if (keepOpen) throw lockedError(`ingest ${JSON.stringify(this.ref)}`, got.holder);
      return;
    }
    let handedOver = false;
    try {
      if (existed && (await readOptional(ingestFile(dir, "ref"))) !== undefined) {
        // A complete ingest of another process (closed meanwhile): its bytes win.
        if (keepOpen) throw new FailedPreconditionError(`ingest ${JSON.stringify(this.ref)} was created by another process meanwhile`, { details: { ref: this.ref } });
        return;
      }
      // The same files, in the same order, as FsWriter's new ingest: `ref` last, atomically.
      const fd = await openFd(ingestFile(dir, "data"), "w", 0o644);
      try {
        await pwriteAll(fd, this.#buf, this.#offset, 0);
        // The data's mtime counts as "updated" too: it must say when the last byte came.
        await futimesFd(fd, this.#updatedAt, this.#updatedAt);
      } finally {
        await closeFd(fd);
      }
      if (existed) await unlinkIfExists(ingestFile(dir, "hashState"));
      await writeFile(ingestFile(dir, "total"), String(this.#total));
      if (this.#expected !== undefined) await writeFile(ingestFile(dir, "expected"), this.#expected);
      else if (existed) await unlinkIfExists(ingestFile(dir, "expected"));
      await writeFile(ingestFile(dir, "startedAt"), this.#startedAt.toISOString());
      await writeFile(ingestFile(dir, "updatedAt"), this.#updatedAt.toISOString());
      await writeFileAtomic(ingestFile(dir, "ref"), this.ref);
      handedOver = keepOpen;
    } finally {
      if (!handedOver) await got.lock.release();
    }
    this.#buf = EMPTY;
    if (!keepOpen) return;
    // The lock goes straight to the regular writer: released in between, another process could
    // expire or abort the ingest and the writer would start an empty one, the bytes accepted
    // so far lost without a word.
    try {
      this.#inner = await FsWriter.open(this.#ctx, { ref: this.ref, total: this.#total, expected: this.#expected, signal: this.#signal }, got.lock);
    } catch (err) {
      this.#finish(); // the bytes are on disk, resumable; this writer cannot go on
      throw err;
    }
  }
}

const EMPTY = Buffer.alloc(0);
