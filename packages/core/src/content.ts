/**
 * The content-store contract, in the spirit of containerd's `content` package: four narrow roles
 * (Provider, Ingester, Manager, IngestManager) so a pusher can pose as an Ingester and a read-only
 * cache as a Provider. Implementations live in their own packages and prove themselves with the
 * shared conformance suite (`@ferry/core/testsuite`).
 */
import type { Readable } from "node:stream";
import type { Descriptor } from "./descriptor.ts";
import type { Digest } from "./digest.ts";

/** What a store knows about one committed blob. */
export interface Info {
  digest: Digest;
  size: number;
  createdAt: Date;
  updatedAt: Date;
  labels: Record<string, string>;
}

/** Progress of one ingest (an uncommitted, resumable write keyed by `ref`). */
export interface Status {
  ref: string;
  /** Bytes written so far. */
  offset: number;
  /** Expected final size, when the writer was opened with one (0 when unknown). */
  total: number;
  /** Expected digest, when the writer was opened with one. */
  expected?: Digest;
  startedAt: Date;
  updatedAt: Date;
}

export interface SignalOptions {
  signal?: AbortSignal;
}

/** Random access to one committed blob. */
export interface ReaderAt {
  readonly size: number;
  /**
   * Read up to `length` bytes at `offset`. Returns fewer bytes only at the end of the blob and an
   * empty array at or past it; never throws for a read past the end.
   */
  read(offset: number, length: number): Promise<Uint8Array>;
  /**
   * Optional: read up to `buffer.byteLength` bytes at `offset` into the caller's `buffer` and
   * return how many were read (fewer only at the end, 0 at or past it). Lets a reader reuse one
   * buffer instead of allocating per read (a 1 GiB push otherwise allocates 1 GiB of buffers, and
   * V8 collects garbage for each 64 MB of them).
   */
  readInto?(buffer: Uint8Array, offset: number): Promise<number>;
  /** A stream of the bytes from `offset` (default 0) to `end` (exclusive, default size). */
  createReadStream(options?: { offset?: number; end?: number; signal?: AbortSignal }): Readable;
  close(): Promise<void>;
}

/** Reads committed content by digest. */
export interface Provider {
  /** Throws `NotFound` when the blob is not committed. */
  readerAt(desc: Pick<Descriptor, "digest"> & { size?: number }, options?: SignalOptions): Promise<ReaderAt>;
}

export interface WriterOptions extends SignalOptions {
  /** Stable key of this ingest; reopening the same ref resumes it. */
  ref: string;
  /** Expected size; a reopen with a different non-zero total is refused (`FailedPrecondition`). */
  total?: number;
  /** Expected digest; persisted with the ingest, checked again at commit. */
  expected?: Digest;
}

export interface CommitOptions {
  labels?: Record<string, string>;
}

/**
 * A resumable writer for one ingest. Data is invisible to readers until `commit`.
 * Only one writer may hold a ref at a time (a second gets `Locked`).
 */
export interface Writer {
  readonly ref: string;
  /** Append bytes at the current offset. */
  write(chunk: Uint8Array): Promise<void>;
  /**
   * Optional: lend the free space the next `write` would copy into, so a source can read into it
   * (`ByteStream.readInto`) and write back a prefix of it without a copy. The loan lasts until
   * the next call on the writer; `undefined` means "nothing to lend now" (write as usual).
   */
  window?(): Uint8Array | undefined;
  /**
   * Write buffered bytes to the store's storage so another process that reopens the ingest sees
   * them; not an fsync. Optional: a store that buffers nothing (or cannot be shared between
   * processes) leaves it out, so call it as `writer.flush?.()`. After it resolves, a reopen of
   * the ref (after this process dies) finds at least `status().offset` bytes.
   */
  flush?(): Promise<void>;
  /** Digest of the bytes written so far. */
  digest(): Digest;
  status(): Promise<Status>;
  /** Drop written data and hash state; only `0` is supported. */
  truncate(size: 0): Promise<void>;
  /**
   * Verify and publish the data. `size`/`expected` left undefined are not checked (but a digest
   * given when the writer was opened always is). On a size or digest mismatch throws
   * `SizeMismatch`/`DigestMismatch` and keeps the ingest data so the caller can truncate or abort;
   * when the content already exists throws `AlreadyExists` and keeps the ingest (unlocked), so the
   * caller decides whether to `abort` it. Commit always closes the writer and releases its lock.
   */
  commit(size?: number, expected?: Digest, options?: CommitOptions): Promise<void>;
  /** Release the writer (and its lock); the ingest stays and can be resumed. Idempotent. */
  close(): Promise<void>;
}

export interface Ingester {
  /** Open (or resume) the ingest `ref`. Throws `Locked` when another writer holds it. */
  writer(options: WriterOptions): Promise<Writer>;
}

export interface WalkFilter {
  /** Keep blobs whose labels match: a string value must equal, `true` means "label present". */
  labels?: Record<string, string | true>;
  /** Keep blobs of this digest algorithm. */
  algorithm?: "sha256" | "sha512";
}

export interface Manager {
  /** Throws `NotFound` when absent. */
  info(digest: Digest, options?: SignalOptions): Promise<Info>;
  /**
   * Update labels. With no field paths every label is replaced by `info.labels`; with paths
   * `labels` (all) or `labels.<key>` (one key; an absent value removes it) only those change.
   */
  update(info: Pick<Info, "digest"> & { labels?: Record<string, string> }, fieldpaths?: string[]): Promise<Info>;
  walk(fn: (info: Info) => void | Promise<void>, filter?: WalkFilter): Promise<void>;
  /** Throws `NotFound` when absent. */
  delete(digest: Digest): Promise<void>;
}

export interface StatusFilter {
  /** Keep ingests whose ref starts with this prefix. */
  refPrefix?: string;
}

export interface IngestManager {
  /** Throws `NotFound` when no ingest has this ref. */
  status(ref: string): Promise<Status>;
  listStatuses(filter?: StatusFilter): Promise<Status[]>;
  /** Remove an ingest and its data. Throws `NotFound` when absent, `Locked` when a writer holds it. */
  abort(ref: string): Promise<void>;
}

/** Named roots (tags) of a store, like an OCI layout's `index.json` entries. */
export interface NameStore {
  /** Throws `NotFound` when the name is unknown. */
  getName(name: string): Promise<Descriptor>;
  setName(name: string, desc: Descriptor): Promise<void>;
  listNames(): Promise<Array<{ name: string; descriptor: Descriptor }>>;
  deleteName(name: string): Promise<void>;
}

/** A complete content store. */
export interface ContentStore extends Provider, Ingester, Manager, IngestManager, NameStore {}

/**
 * A store that can keep its content from garbage collection while a transfer into it runs:
 * `pull` and `copy` hold a lease on a store destination that offers one (store-fs does; `ferry
 * content prune` removes no blob while a live lease exists).
 */
export interface Leaser {
  lease(): Promise<{ release(): Promise<void> }>;
}
