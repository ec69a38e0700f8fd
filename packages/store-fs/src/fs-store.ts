/**
 * FsStore: a {@link ContentStore} on a directory that is also a valid OCI image layout, so
 * skopeo (`oci:DIR:NAME`), umoci and other OCI tools read what ferry writes and ferry reads
 * what they write. See `layout.ts` for the files, `fs-writer.ts` for how ingests commit.
 */
import { chmod, link, mkdir, open, readdir, realpath, rename, rm, stat, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  nodeDigesters,
  parseDigest,
  throwIfAborted,
  type ContentStore,
  type Descriptor,
  type Digest,
  type DigesterFactory,
  type Info,
  type ReaderAt,
  type SignalOptions,
  type Status,
  type StatusFilter,
  type WalkFilter,
  type Writer,
  type WriterOptions,
} from "@ferry/core";
import { BlobMetaStore, validateLabels, type BlobMeta } from "./blob-meta.ts";
import { FileLock, heldByLive, lockedError } from "./file-lock.ts";
import { FsReaderAt } from "./fs-reader.ts";
import { statPath } from "./fd-calls.ts";
import { FsWriter, type WriterContext } from "./fs-writer.ts";
import { errno, isEEXIST, isENOENT, randomToken, readOptional, tempSibling, unlinkIfExists } from "./fs-util.ts";
import { ingestFile, readIngestStatus } from "./ingest-files.ts";
import { Layout, OCI_LAYOUT_VERSION, isIngestKey, validateRef } from "./layout.ts";
import { NameIndex, emptyIndex } from "./name-index.ts";
import { heldHereError, heldIngestsOf, type HeldIngest } from "./held-ingests.ts";
import { SMALL_TEMP_MIN_AGE_MS, SMALL_TEMP_PREFIX, SmallBlobWriter } from "./small-blob-writer.ts";
import { StagingPool } from "./staging-pool.ts";
import { alignUp, alignedBuffer } from "./aligned-buffer.ts";

export interface FsStoreOptions {
  /**
   * Hashers for ingests. Default: core's `nodeDigesters` (node:crypto, fastest; a resume
   * re-reads the partial data). Pass `hashWasmDigesters` to checkpoint the hash state so a
   * resume only re-hashes the bytes written after the last checkpoint.
   */
  digesters?: DigesterFactory;
  /**
   * Minimum bytes between two hash-state checkpoints (only with a digester that can `save()`).
   * Default 16 MiB.
   */
  checkpointBytes?: number;
  /**
   * Small writes are gathered into one `writev` of at least this many bytes; also the size of a
   * direct-write (and hash-worker) batch. Default 2 MiB: with lent batches 1 MiB cost 0.2–0.3
   * CPU s more per GiB (more socket pauses, disk writes and wake-ups; issue 6); 4 MiB saved
   * another ~7 % of user CPU on 8 × 128 MiB but peaked at 99.5 MB with 8 layers at once, against
   * 85–88 MB (bench/README.md).
   */
  writeBatchBytes?: number;
  /**
   * Memory for direct-write batches beyond each writer's first: a direct writer takes a second
   * batch, so that it keeps receiving while the first is on its way to disk, only while the
   * store's batches in use stay within this many bytes. Default 16 MiB: up to four writers keep
   * two 2 MiB batches each, more writers share the budget (eight layers at once: 8 batches, not
   * 16); 0 = never a second batch.
   */
  directWriteMemoryBytes?: number;
  /**
   * A lock held from another host is considered abandoned after this long without a heartbeat.
   * Holders on this host are checked by pid and detected at once. Default 30 000 ms.
   */
  staleLockMs?: number;
  /** fsync blobs and directories at commit (once per blob). Default true. */
  fsync?: boolean;
  /**
   * Ingests declaring at least this total (with the default node:crypto digesters) are hashed
   * on a worker thread while the thread pool writes them, overlapping with the receiving
   * thread. Default `Infinity` (off: on 2 busy cores it cost more than it saved; try 8 MiB
   * with cores to spare).
   */
  hashWorkerMinBytes?: number;
  /**
   * A writer declaring a total of at most this many bytes, on a ref with no ingest on disk,
   * holds its bytes in memory and writes only the blob at commit (the small-blob fast path;
   * anything but a successful commit turns it into a regular on-disk ingest). Default 256 KiB;
   * 0 turns the fast path off.
   */
  smallBlobBytes?: number;
  /**
   * Ingests declaring a total of at least this many bytes write their data with O_DIRECT,
   * bypassing the page cache (see the README's "Direct writes"; falls back by itself where the
   * filesystem refuses). Default 8 MiB; `Infinity` turns it off.
   */
  directWriteMinBytes?: number;
}

const MiB = 1024 * 1024;

/**
 * Not part of the public surface (index.ts does not export it): lets tests hand direct writers
 * misaligned memory, so that the kernel's EINVAL and the fallback to the page cache can be proved.
 */
export interface FsStoreInternalOptions {
  allocateAligned?: (size: number) => Buffer;
}

/** Open (creating when needed) a filesystem store at `root`. */
export async function openFsStore(root: string, options: FsStoreOptions = {}): Promise<FsStore> {
  const store = new FsStore(root, options);
  await store.ready();
  return store;
}

export class FsStore implements ContentStore {
  readonly root: string;
  readonly #layout: Layout;
  readonly #meta: BlobMetaStore;
  readonly #names: NameIndex;
  readonly #ctx: WriterContext;
  readonly #smallBlobBytes: number;
  /** Writers open in this process on this root, shared with every other handle on it. */
  #held: Map<string, HeldIngest> = new Map();
  #ready: Promise<void> | undefined;

  constructor(root: string, options: FsStoreOptions & FsStoreInternalOptions = {}) {
    if (typeof root !== "string" || root.length === 0) throw new InvalidArgumentError("store root must be a non-empty path");
    const writeBatchBytes = positive(options.writeBatchBytes, 2 * MiB, "writeBatchBytes");
    const directMemory = options.directWriteMemoryBytes === 0 ? 0 : positive(options.directWriteMemoryBytes, 16 * MiB, "directWriteMemoryBytes");
    /** Aligned batches the budget holds. */
    const budgetBatches = Math.floor(directMemory / alignUp(writeBatchBytes));
    const checkpointBytes = positive(options.checkpointBytes, 16 * MiB, "checkpointBytes");
    const staleLockMs = positive(options.staleLockMs, 30_000, "staleLockMs");
    const fsync = options.fsync ?? true;
    this.#smallBlobBytes = options.smallBlobBytes === 0 ? 0 : positive(options.smallBlobBytes, 256 * 1024, "smallBlobBytes");
    this.root = root;
    this.#layout = new Layout(root);
    this.#meta = new BlobMetaStore(this.#layout, staleLockMs);
    this.#names = new NameIndex(this.#layout, staleLockMs, fsync);
    this.#ctx = {
      layout: this.#layout,
      digesters: options.digesters ?? nodeDigesters,
      meta: this.#meta,
      writeBatchBytes,
      staging: new StagingPool(writeBatchBytes),
      checkpointBytes,
      staleLockMs,
      fsync,
      hashWorkerMinBytes: options.hashWorkerMinBytes,
      directWriteMinBytes: thresholdBytes(options.directWriteMinBytes, 8 * MiB, "directWriteMinBytes"),
      directSpareLimit: budgetBatches,
      // Idle batches kept for the next writers: as many as the budget allows, at least one.
      directStaging: new StagingPool(alignUp(writeBatchBytes), Math.max(1, budgetBatches), options.allocateAligned ?? ((n) => alignedBuffer(n))),
      direct: { supported: true },
      onClosed: (w) => this.#release(w.ref, w),
    };
  }

  /** Create the layout's skeleton when absent; check its version when present. Idempotent. */
  ready(): Promise<void> {
    this.#ready ??= this.#init().catch((err: unknown) => {
      this.#ready = undefined;
      throw err;
    });
    return this.#ready;
  }

  async #init(): Promise<void> {
    const l = this.#layout;
    await mkdir(l.root, { recursive: true });
    const layout = await readOptional(l.layoutFile);
    if (layout === undefined) {
      await createIfAbsent(l.layoutFile, `${JSON.stringify({ imageLayoutVersion: OCI_LAYOUT_VERSION })}\n`);
    } else {
      let version: unknown;
      try {
        version = (JSON.parse(layout) as { imageLayoutVersion?: unknown }).imageLayoutVersion;
      } catch {
        version = undefined;
      }
      if (version !== OCI_LAYOUT_VERSION) {
        throw new FailedPreconditionError(`${l.layoutFile} declares imageLayoutVersion ${JSON.stringify(version)}, ferry supports ${OCI_LAYOUT_VERSION}`);
      }
    }
    // A layout that exists already may be one this user can only read (another user's, a
    // read-only mount, skopeo's): opening it writes nothing, and what ferry adds to a layout is
    // created when it can be. Writing to such a store fails then, with the file system's error.
    const existing = layout !== undefined && (await readOptional(l.indexFile)) !== undefined;
    if (!existing) await createIfAbsent(l.indexFile, `${JSON.stringify(emptyIndex())}\n`);
    for (const dir of [join(l.blobsDir, "sha256"), l.ingestDir, l.metaDir, l.locksDir]) {
      try {
        await mkdir(dir, { recursive: true });
      } catch (err) {
        if (!existing || !READ_ONLY_ERRNOS.has(errno(err) ?? "")) throw err;
      }
    }
    this.#held = heldIngestsOf(await realpath(l.root));
  }

  // -- Provider --------------------------------------------------------------------------

  async readerAt(desc: Pick<Descriptor, "digest"> & { size?: number }, options: SignalOptions = {}): Promise<ReaderAt> {
    const path = this.#layout.blobPath(desc.digest);
    throwIfAborted(options.signal);
    await this.ready();
    let fh;
    try {
      fh = await open(path, "r");
    } catch (err) {
      if (isENOENT(err)) throw notFound(desc.digest);
      throw err;
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw notFound(desc.digest); // a directory or device squatting on a blob path
      return new FsReaderAt(fh, st.size);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  // -- Ingester --------------------------------------------------------------------------

  async writer(options: WriterOptions): Promise<Writer> {
    validateRef(options?.ref);
    await this.ready();
    const { ref, total, expected, signal } = options;
    // One writer per ref in this process, through any handle: refused before any disk access.
    if (this.#held.has(ref)) throw heldHereError(ref);
    const slot: HeldIngest = { owner: this };
    this.#held.set(ref, slot);
    try {
      let w: Writer & { ref: string };
      if (
        total !== undefined && Number.isSafeInteger(total) && total > 0 && total <= this.#smallBlobBytes &&
        (expected === undefined || parseDigest(expected)) &&
        !(await this.#ingestOnDisk(ref))
      ) {
        throwIfAborted(signal);
        w = await SmallBlobWriter.open({ ctx: this.#ctx, ref, total, expected, signal, onDone: (sw) => this.#release(ref, sw) });
      } else {
        w = await FsWriter.open(this.#ctx, options);
      }
      slot.writer = w;
      return w;
    } catch (err) {
      this.#release(ref, undefined);
      throw err;
    }
  }

  // -- Manager ---------------------------------------------------------------------------

  async info(digest: Digest, options: SignalOptions = {}): Promise<Info> {
    const path = this.#layout.blobPath(digest);
    throwIfAborted(options.signal);
    await this.ready();
    const info = await this.#infoAt(parseDigest(digest), path);
    if (info === undefined) throw notFound(digest);
    return info;
  }

  async update(info: Pick<Info, "digest"> & { labels?: Record<string, string> }, fieldpaths?: string[]): Promise<Info> {
    const digest = parseDigest(info?.digest);
    const path = this.#layout.blobPath(digest);
    const labels = validateLabels(info.labels);
    const keys = parseFieldpaths(fieldpaths);
    await this.ready();
    const st = await statBlob(path);
    if (st === undefined) throw notFound(digest);
    const meta = await this.#meta.modify(
      digest,
      async () => fallbackMeta(st.mtimeMs),
      (cur) => {
        let next: Record<string, string>;
        if (keys === "all") next = { ...labels };
        else {
          next = { ...cur.labels };
          for (const k of keys) {
            const v = labels[k];
            if (v === undefined) delete next[k];
            else next[k] = v;
          }
        }
        return { createdAt: cur.createdAt, updatedAt: new Date().toISOString(), labels: next };
      },
    );
    // A concurrent delete may have removed the blob meanwhile; do not leave metadata behind.
    if ((await statBlob(path)) === undefined) {
      await this.#meta.remove(digest);
      throw notFound(digest);
    }
    return toInfo(digest, st.size, meta);
  }

  async walk(fn: (info: Info) => void | Promise<void>, filter: WalkFilter = {}): Promise<void> {
    await this.ready();
    const algorithms = filter.algorithm ? [filter.algorithm] : (["sha256", "sha512"] as const);
    for (const algorithm of algorithms) {
      let names: string[];
      try {
        names = await readdir(join(this.#layout.blobsDir, algorithm));
      } catch (err) {
        if (isENOENT(err)) continue;
        throw err;
      }
      names.sort();
      for (const hex of names) {
        const candidate = `${algorithm}:${hex}`;
        let digest: Digest;
        try {
          digest = parseDigest(candidate);
        } catch {
          continue; // temp files and strangers in blobs/ are not content
        }
        const info = await this.#infoAt(digest, join(this.#layout.blobsDir, algorithm, hex));
        if (info === undefined || !matchLabels(info.labels, filter.labels)) continue;
        await fn(info);
      }
    }
  }

  async delete(digest: Digest): Promise<void> {
    const path = this.#layout.blobPath(digest);
    await this.ready();
    // Committed blobs are 0444; make the file writable first so tools that check the mode
    // (and filesystems that honour it for unlink) do not refuse.
    try {
      await chmod(path, 0o644);
      await unlink(path);
    } catch (err) {
      if (isENOENT(err)) throw notFound(digest);
      throw err;
    }
    await this.#meta.remove(parseDigest(digest));
  }

  // -- IngestManager ---------------------------------------------------------------------

  async status(ref: string): Promise<Status> {
    const dir = this.#layout.ingestPath(ref);
    await this.ready();
    const live = this.#liveWriter(ref);
    if (live) return live.status();
    const s = await readIngestStatus(dir);
    if (s === undefined || s.ref !== ref) throw new NotFoundError(`no ingest with ref ${JSON.stringify(ref)}`, { details: { ref } });
    return s;
  }

  async listStatuses(filter: StatusFilter = {}): Promise<Status[]> {
    await this.ready();
    const out: Status[] = [];
    const listed = new Set<string>();
    for (const key of await this.#ingestKeys()) {
      const s = await readIngestStatus(join(this.#layout.ingestDir, key)).catch(() => undefined);
      if (s === undefined) continue;
      if (filter.refPrefix !== undefined && !s.ref.startsWith(filter.refPrefix)) continue;
      const live = this.#liveWriter(s.ref);
      out.push(live ? await live.status() : s);
      listed.add(s.ref);
    }
    // Small-blob ingests still in memory have no directory to find.
    for (const [ref, { owner, writer }] of this.#held) {
      if (owner !== this || !writer?.inMemory || listed.has(ref)) continue;
      if (filter.refPrefix !== undefined && !ref.startsWith(filter.refPrefix)) continue;
      out.push(await writer.status());
    }
    return out;
  }

  async abort(ref: string): Promise<void> {
    const dir = this.#layout.ingestPath(ref);
    await this.ready();
    if (this.#held.has(ref)) throw heldHereError(ref);
    let got;
    try {
      got = await FileLock.tryAcquire(ingestFile(dir, "lock"), { staleMs: this.#ctx.staleLockMs });
    } catch (err) {
      if (isENOENT(err)) throw new NotFoundError(`no ingest with ref ${JSON.stringify(ref)}`, { details: { ref } });
      throw err;
    }
    if (!got.lock) throw lockedError(`ingest ${JSON.stringify(ref)}`, got.holder);
    const stored = await readOptional(ingestFile(dir, "ref"));
    if (stored !== ref) {
      await got.lock.release();
      // No ref file: an empty directory our lock attempt may have found; leave nothing behind.
      if (stored === undefined) await rm(dir, { recursive: true, force: true }).catch(() => {});
      throw new NotFoundError(`no ingest with ref ${JSON.stringify(ref)}`, { details: { ref } });
    }
    await this.#removeLocked(dir, got.lock);
  }

  /**
   * Remove ingests not updated for longer than `maxIdleMs` (a writer that is alive, in this
   * or another process, keeps its ingest: locked ones are skipped). Also clears leftovers of
   * interrupted ingest creation and removal. Returns the refs removed.
   */
  async expireIngests(maxIdleMs: number, options: SignalOptions = {}): Promise<string[]> {
    if (!Number.isFinite(maxIdleMs) || maxIdleMs < 0) throw new InvalidArgumentError(`maxIdleMs must be a non-negative number, got ${maxIdleMs}`);
    await this.ready();
    const now = Date.now();
    const removed: string[] = [];
    let entries: string[];
    try {
      entries = await readdir(this.#layout.ingestDir);
    } catch (err) {
      if (isENOENT(err)) return removed;
      throw err;
    }
    for (const name of entries) {
      throwIfAborted(options.signal);
      const dir = join(this.#layout.ingestDir, name);
      if (name.startsWith(".trash-")) {
        await rm(dir, { recursive: true, force: true });
        continue;
      }
      if (name.startsWith(SMALL_TEMP_PREFIX)) {
        // A small-blob commit's temp file, left by a crash between its creation and unlink (or
        // one being committed right now: hence the minimum age).
        const st = await stat(dir).catch(() => undefined);
        if (st !== undefined && now - st.mtimeMs > Math.max(maxIdleMs, SMALL_TEMP_MIN_AGE_MS)) await unlinkIfExists(dir);
        continue;
      }
      if (!isIngestKey(name)) continue;
      const s = await readIngestStatus(dir).catch(() => undefined);
      const lastTouched = s?.updatedAt.getTime() ?? (await stat(dir).catch(() => undefined))?.mtimeMs ?? now;
      if (now - lastTouched <= maxIdleMs) continue;
      if (s !== undefined && this.#held.has(s.ref)) continue;
      const got = await FileLock.tryAcquire(ingestFile(dir, "lock"), { staleMs: this.#ctx.staleLockMs }).catch(() => undefined);
      if (!got?.lock) continue;
      // Re-check under the lock: the ingest may have been resumed and written meanwhile.
      const again = await readIngestStatus(dir).catch(() => undefined);
      if (again !== undefined && now - again.updatedAt.getTime() <= maxIdleMs) {
        await got.lock.release();
        continue;
      }
      await this.#removeLocked(dir, got.lock);
      if (again !== undefined) removed.push(again.ref);
    }
    return removed;
  }

  // -- NameStore -------------------------------------------------------------------------

  async getName(name: string): Promise<Descriptor> {
    await this.ready();
    return this.#names.get(name);
  }

  async setName(name: string, desc: Descriptor): Promise<void> {
    await this.ready();
    return this.#names.set(name, desc);
  }

  async listNames(): Promise<Array<{ name: string; descriptor: Descriptor }>> {
    await this.ready();
    return this.#names.list();
  }

  /**
   * Hold the store's content against garbage collection while a transfer runs (core's pull and
   * copy take one): `ferry content prune` removes no blob while a live lease exists, since a
   * pull reuses blobs that no name reaches until it records its own. Release it when done; the
   * lease of a process that died is ignored (and removed by {@link activeLeases}).
   */
  async lease(): Promise<{ release(): Promise<void> }> {
    await this.ready();
    await mkdir(this.#layout.leasesDir, { recursive: true });
    const got = await FileLock.tryAcquire(join(this.#layout.leasesDir, `${randomToken()}.lease`), { staleMs: this.#ctx.staleLockMs });
    const lock = got.lock as FileLock; // a name of its own: always free
    return { release: () => lock.release() };
  }

  /** The live leases on this store (see {@link lease}); those of dead processes are removed. */
  async activeLeases(): Promise<number> {
    let names: string[];
    try {
      names = await readdir(this.#layout.leasesDir);
    } catch (err) {
      if (isENOENT(err)) return 0;
      throw err;
    }
    let live = 0;
    for (const name of names.filter((n) => n.endsWith(".lease"))) {
      const path = join(this.#layout.leasesDir, name);
      if (await heldByLive(path, this.#ctx.staleLockMs)) live++;
      else await unlinkIfExists(path).catch(() => {});
    }
    return live;
  }

  /** Every image the layout's index.json lists, named or not: what a garbage collection must keep. */
  async listRoots(): Promise<Descriptor[]> {
    await this.ready();
    return this.#names.roots();
  }

  async deleteName(name: string): Promise<void> {
    await this.ready();
    return this.#names.delete(name);
  }

  // -- internals -------------------------------------------------------------------------

  async #infoAt(digest: Digest, path: string): Promise<Info | undefined> {
    const st = await statBlob(path);
    if (st === undefined) return undefined;
    const meta = (await this.#meta.read(digest)) ?? fallbackMeta(st.mtimeMs);
    return toInfo(digest, st.size, meta);
  }

  /** Free `ref` in the held registry if `writer` (or, with undefined, a pending open) holds it. */
  #release(ref: string, writer: object | undefined): void {
    const slot = this.#held.get(ref);
    if (slot !== undefined && slot.writer === writer) this.#held.delete(ref);
  }

  /**
   * The open writer of `ref` when this handle opened it. Another handle reports what is on disk,
   * as another process would see it (an in-memory small ingest of another handle is not listed).
   */
  #liveWriter(ref: string): HeldIngest["writer"] {
    const slot = this.#held.get(ref);
    return slot?.owner === this ? slot.writer : undefined;
  }

  /** Whether an ingest directory (complete or not) exists for `ref`: one stat. */
  async #ingestOnDisk(ref: string): Promise<boolean> {
    try {
      await statPath(this.#layout.ingestPath(ref));
      return true;
    } catch (err) {
      if (isENOENT(err)) return false;
      return true; // unknown: let the regular path deal with it
    }
  }

  async #ingestKeys(): Promise<string[]> {
    try {
      return (await readdir(this.#layout.ingestDir)).filter(isIngestKey);
    } catch (err) {
      if (isENOENT(err)) return [];
      throw err;
    }
  }

  /** Remove an ingest directory whose lock we hold: rename away first, then delete. */
  async #removeLocked(dir: string, lock: FileLock): Promise<void> {
    const trash = join(this.#layout.ingestDir, `.trash-${randomToken()}`);
    try {
      await rename(dir, trash);
    } catch (err) {
      await lock.release();
      throw err;
    }
    lock.forget();
    await rm(trash, { recursive: true, force: true });
  }
}

function positive(v: number | undefined, dflt: number, name: string): number {
  if (v === undefined) return dflt;
  if (!Number.isSafeInteger(v) || v <= 0) throw new InvalidArgumentError(`${name} must be a positive integer, got ${v}`);
  return v;
}

/** A size threshold: a non-negative integer, or Infinity (never reached: the feature is off). */
function thresholdBytes(v: number | undefined, dflt: number, name: string): number {
  if (v === undefined || v === Number.POSITIVE_INFINITY) return v ?? dflt;
  if (!Number.isSafeInteger(v) || v < 0) throw new InvalidArgumentError(`${name} must be a non-negative integer or Infinity, got ${v}`);
  return v;
}

/** Create `path` with `content` unless it exists; readers never see it empty or partial. */
/** What creating a directory in a layout one may only read fails with. */
const READ_ONLY_ERRNOS = new Set(["EACCES", "EPERM", "EROFS"]);

async function createIfAbsent(path: string, content: string): Promise<void> {
  const tmp = tempSibling(path);
  await writeFile(tmp, content, { flag: "wx", mode: 0o644 });
  try {
    // link fails when another process created the file first; its content is equivalent.
    await link(tmp, path);
  } catch (err) {
    if (!isEEXIST(err)) throw err;
  } finally {
    await unlink(tmp).catch(() => {});
  }
}

async function statBlob(path: string): Promise<{ size: number; mtimeMs: number } | undefined> {
  try {
    const st = await statPath(path);
    return st.isFile() ? { size: st.size, mtimeMs: st.mtimeMs } : undefined;
  } catch (err) {
    if (isENOENT(err)) return undefined;
    throw err;
  }
}

function fallbackMeta(mtimeMs: number): BlobMeta {
  const t = new Date(Math.floor(mtimeMs)).toISOString();
  return { createdAt: t, updatedAt: t, labels: {} };
}

function toInfo(digest: Digest, size: number, meta: BlobMeta): Info {
  return { digest, size, createdAt: new Date(meta.createdAt), updatedAt: new Date(meta.updatedAt), labels: { ...meta.labels } };
}

function notFound(digest: string): NotFoundError {
  return new NotFoundError(`content ${digest} not found`, { details: { digest } });
}

function matchLabels(labels: Record<string, string>, want: WalkFilter["labels"]): boolean {
  if (want === undefined) return true;
  for (const [k, v] of Object.entries(want)) {
    const have = labels[k];
    if (have === undefined) return false;
    if (v !== true && have !== v) return false;
  }
  return true;
}

/** `undefined`/`[]`/`["labels"]` → replace all; `labels.<key>` → those keys. */
function parseFieldpaths(fieldpaths: string[] | undefined): "all" | string[] {
  if (fieldpaths === undefined || fieldpaths.length === 0) return "all";
  const keys: string[] = [];
  for (const p of fieldpaths) {
    if (p === "labels") return "all";
    if (p.startsWith("labels.") && p.length > "labels.".length) keys.push(p.slice("labels.".length));
    else throw new InvalidArgumentError(`cannot update field ${JSON.stringify(p)}: only "labels" and "labels.<key>" are supported`);
  }
  return keys;
}

