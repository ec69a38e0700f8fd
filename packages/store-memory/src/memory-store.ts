import { addAbortSignal, Readable } from "node:stream";
import {
  AlreadyExistsError,
  type CommitOptions,
  type ContentStore,
  type Descriptor,
  type Digest,
  type DigestAlgorithm,
  type Digester,
  type DigesterFactory,
  DigestMismatchError,
  digestAlgorithm,
  FailedPreconditionError,
  type Info,
  InvalidArgumentError,
  LockedError,
  nodeDigesters,
  NotFoundError,
  parseDigest,
  type ReaderAt,
  type SignalOptions,
  SizeMismatchError,
  type Status,
  type StatusFilter,
  throwIfAborted,
  type WalkFilter,
  type Writer,
  type WriterOptions,
} from "@ferry/core";
import { ChunkList } from "./chunk-list.ts";

export interface MemoryStoreOptions {
  /** Hash implementation for ingests. Default: `node:crypto` ({@link nodeDigesters}). */
  digesters?: DigesterFactory;
}

interface BlobEntry {
  data: ChunkList;
  createdAt: Date;
  updatedAt: Date;
  labels: Record<string, string>;
}

interface Ingest {
  ref: string;
  data: ChunkList;
  digester: Digester;
  total: number;
  expected?: Digest;
  startedAt: Date;
  updatedAt: Date;
  /** The writer holding this ingest; locks are per process, which is all a memory store needs. */
  holder?: MemoryWriter;
}

/**
 * A content store in process memory: all four roles plus names. Useful for tests, caches and as
 * the reference implementation of the contract. Blob bytes are kept as chunk lists and streamed
 * to readers without concatenation.
 */
export class MemoryStore implements ContentStore {
  readonly #blobs = new Map<Digest, BlobEntry>();
  readonly #ingests = new Map<string, Ingest>();
  readonly #names = new Map<string, Descriptor>();
  readonly #digesters: DigesterFactory;

  constructor(options: MemoryStoreOptions = {}) {
    this.#digesters = options.digesters ?? nodeDigesters;
  }

  // Provider

  async readerAt(desc: Pick<Descriptor, "digest"> & { size?: number }, options?: SignalOptions): Promise<ReaderAt> {
    throwIfAborted(options?.signal);
    const digest = parseDigest(desc.digest);
    const entry = this.#blob(digest);
    if (desc.size !== undefined && desc.size !== entry.data.size) {
      throw new SizeMismatchError(`blob ${digest} is ${entry.data.size} bytes, not ${desc.size}`, {
        details: { digest, size: entry.data.size, expected: desc.size },
      });
    }
    return chunkReader(entry.data);
  }

  // Ingester

  async writer(options: WriterOptions): Promise<Writer> {
    throwIfAborted(options.signal);
    const { ref, total } = options;
    if (typeof ref !== "string" || ref === "") throw new InvalidArgumentError("ingest ref must be a non-empty string");
    if (total !== undefined && (!Number.isSafeInteger(total) || total < 0)) {
      throw new InvalidArgumentError(`invalid total ${total} for ingest ${ref}`, { details: { ref } });
    }
    const expected = options.expected === undefined ? undefined : parseDigest(options.expected);
    if (expected !== undefined && this.#blobs.has(expected)) {
      throw new AlreadyExistsError(`content ${expected} already exists`, { details: { ref, digest: expected } });
    }
    let ingest = this.#ingests.get(ref);
    if (ingest) {
      if (ingest.holder) throw new LockedError(`ingest ${ref} is locked by another writer`, { details: { ref } });
      if (total && ingest.total && total !== ingest.total) {
        throw new FailedPreconditionError(`ingest ${ref} was opened with total ${ingest.total}, not ${total}`, {
          details: { ref, total: ingest.total, requested: total },
        });
      }
      if (expected && ingest.expected && expected !== ingest.expected) {
        throw new FailedPreconditionError(`ingest ${ref} expects ${ingest.expected}, not ${expected}`, {
          details: { ref, expected: ingest.expected, requested: expected },
        });
      }
      if (total && !ingest.total) ingest.total = total;
      if (expected && !ingest.expected) {
        ingest.expected = expected;
        this.#matchAlgorithm(ingest, digestAlgorithm(expected));
      }
    } else {
      const now = new Date();
      ingest = {
        ref,
        data: new ChunkList(),
        digester: this.#digesters.create(expected ? digestAlgorithm(expected) : "sha256"),
        total: total ?? 0,
        expected,
        startedAt: now,
        updatedAt: now,
      };
      this.#ingests.set(ref, ingest);
    }
    const opened = ingest;
    const writer = new MemoryWriter(opened, this.#digesters, (size, digest, opts) => this.#commit(opened, size, digest, opts));
    ingest.holder = writer;
    return writer;
  }

  /** Rehash an ingest with another algorithm (only when `expected` arrives after the data). */
  #matchAlgorithm(ingest: Ingest, algorithm: DigestAlgorithm): void {
    if (ingest.digester.algorithm === algorithm) return;
    ingest.digester = this.#rehash(ingest.data, algorithm);
  }

  #rehash(data: ChunkList, algorithm: DigestAlgorithm): Digester {
    const d = this.#digesters.create(algorithm);
    for (const v of data.views()) d.update(v);
    return d;
  }

  /** Verify and publish an ingest; its writer calls this after releasing the lock. */
  #commit(ingest: Ingest, size: number | undefined, expected: Digest | undefined, options: CommitOptions): void {
    const ref = ingest.ref;
    const actualSize = ingest.data.size;
    const wantSize = size ?? (ingest.total || undefined);
    if (wantSize !== undefined && wantSize !== actualSize) {
      throw new SizeMismatchError(`ingest ${ref} holds ${actualSize} bytes, expected ${wantSize}`, {
        details: { ref, size: actualSize, expected: wantSize },
      });
    }
    let digest = ingest.digester.digest();
    for (const want of [expected === undefined ? undefined : parseDigest(expected), ingest.expected]) {
      if (want === undefined) continue;
      const got = digestAlgorithm(want) === digestAlgorithm(digest) ? digest : this.#rehash(ingest.data, digestAlgorithm(want)).digest();
      if (got !== want) {
        throw new DigestMismatchError(`ingest ${ref} has digest ${got}, expected ${want}`, {
          details: { ref, digest: got, expected: want },
        });
      }
      digest = want;
    }
    if (this.#blobs.has(digest)) {
      throw new AlreadyExistsError(`content ${digest} already exists`, { details: { ref, digest } });
    }
    const now = new Date();
    ingest.data.seal();
    this.#blobs.set(digest, { data: ingest.data, createdAt: now, updatedAt: now, labels: { ...options.labels } });
    this.#ingests.delete(ref);
  }

  // Manager

  async info(digest: Digest, options?: SignalOptions): Promise<Info> {
    throwIfAborted(options?.signal);
    const d = parseDigest(digest);
    return toInfo(d, this.#blob(d));
  }

  async update(info: Pick<Info, "digest"> & { labels?: Record<string, string> }, fieldpaths?: string[]): Promise<Info> {
    const digest = parseDigest(info.digest);
    const entry = this.#blob(digest);
    const given = info.labels ?? {};
    let labels: Record<string, string>;
    if (!fieldpaths || fieldpaths.length === 0) {
      labels = { ...given };
    } else {
      labels = { ...entry.labels };
      for (const path of fieldpaths) {
        if (path === "labels") {
          labels = { ...given };
        } else if (path.startsWith("labels.") && path.length > "labels.".length) {
          const key = path.slice("labels.".length);
          const value = Object.hasOwn(given, key) ? given[key] : undefined;
          if (value === undefined) delete labels[key];
          else labels[key] = value;
        } else {
          throw new InvalidArgumentError(`cannot update field ${JSON.stringify(path)} of content ${digest}`, {
            details: { digest, fieldpath: path },
          });
        }
      }
    }
    entry.labels = labels;
    entry.updatedAt = new Date();
    return toInfo(digest, entry);
  }

  async walk(fn: (info: Info) => void | Promise<void>, filter: WalkFilter = {}): Promise<void> {
    // Snapshot: the callback may delete or add blobs.
    for (const [digest, entry] of [...this.#blobs]) {
      if (filter.algorithm && digestAlgorithm(digest) !== filter.algorithm) continue;
      if (filter.labels && !labelsMatch(entry.labels, filter.labels)) continue;
      await fn(toInfo(digest, entry));
    }
  }

  async delete(digest: Digest): Promise<void> {
    const d = parseDigest(digest);
    if (!this.#blobs.delete(d)) throw notFound(d);
  }

  // IngestManager

  async status(ref: string): Promise<Status> {
    return toStatus(this.#ingest(ref));
  }

  async listStatuses(filter: StatusFilter = {}): Promise<Status[]> {
    const out: Status[] = [];
    for (const ingest of this.#ingests.values()) {
      if (filter.refPrefix === undefined || ingest.ref.startsWith(filter.refPrefix)) out.push(toStatus(ingest));
    }
    return out;
  }

  async abort(ref: string): Promise<void> {
    const ingest = this.#ingest(ref);
    if (ingest.holder) throw new LockedError(`ingest ${ref} is locked by a writer`, { details: { ref } });
    this.#ingests.delete(ref);
  }

  // NameStore

  async getName(name: string): Promise<Descriptor> {
    const desc = this.#names.get(name);
    if (!desc) throw new NotFoundError(`name ${JSON.stringify(name)} not found`, { details: { name } });
    return structuredClone(desc);
  }

  async setName(name: string, desc: Descriptor): Promise<void> {
    if (typeof name !== "string" || name === "") throw new InvalidArgumentError("name must be a non-empty string");
    parseDigest(desc.digest);
    this.#names.set(name, structuredClone(desc));
  }

  async listNames(): Promise<Array<{ name: string; descriptor: Descriptor }>> {
    return [...this.#names].map(([name, d]) => ({ name, descriptor: structuredClone(d) }));
  }

  async deleteName(name: string): Promise<void> {
    if (!this.#names.delete(name)) throw new NotFoundError(`name ${JSON.stringify(name)} not found`, { details: { name } });
  }

  #blob(digest: Digest): BlobEntry {
    const entry = this.#blobs.get(digest);
    if (!entry) throw notFound(digest);
    return entry;
  }

  #ingest(ref: string): Ingest {
    const ingest = this.#ingests.get(ref);
    if (!ingest) throw new NotFoundError(`no ingest with ref ${JSON.stringify(ref)}`, { details: { ref } });
    return ingest;
  }
}

/** Same as `new MemoryStore(options)`. */
export function createMemoryStore(options?: MemoryStoreOptions): MemoryStore {
  return new MemoryStore(options);
}

type CommitFn = (size: number | undefined, expected: Digest | undefined, options: CommitOptions) => void;

class MemoryWriter implements Writer {
  readonly ref: string;
  readonly #ingest: Ingest;
  readonly #digesters: DigesterFactory;
  readonly #commit: CommitFn;
  #closed = false;

  constructor(ingest: Ingest, digesters: DigesterFactory, commit: CommitFn) {
    this.#ingest = ingest;
    this.#digesters = digesters;
    this.#commit = commit;
    this.ref = ingest.ref;
  }

  async write(chunk: Uint8Array): Promise<void> {
    this.#assertOpen();
    if (chunk.byteLength === 0) return;
    this.#ingest.data.append(chunk);
    this.#ingest.digester.update(chunk);
    this.#ingest.updatedAt = new Date();
  }

  digest(): Digest {
    return this.#ingest.digester.digest();
  }

  async status(): Promise<Status> {
    return toStatus(this.#ingest);
  }

  async truncate(size: 0): Promise<void> {
    this.#assertOpen();
    if (size !== 0) throw new InvalidArgumentError(`truncate supports only 0, got ${String(size)}`, { details: { ref: this.ref } });
    this.#ingest.data = new ChunkList();
    this.#ingest.digester = this.#digesters.create(this.#ingest.digester.algorithm);
    this.#ingest.updatedAt = new Date();
  }

  async commit(size?: number, expected?: Digest, options: CommitOptions = {}): Promise<void> {
    this.#assertOpen();
    // Commit always closes: a failed commit leaves the ingest for a retry by a new writer. The
    // ref is let go and the blob published in one step: with a pause between them another writer
    // could take the ingest whose bytes become the blob, and write into a committed blob.
    this.#release();
    this.#commit(size, expected, options);
  }

  async close(): Promise<void> {
    this.#release();
  }

  #release(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#ingest.holder === this) this.#ingest.holder = undefined;
  }

  #assertOpen(): void {
    if (this.#closed) throw new FailedPreconditionError(`writer for ${this.ref} is closed`, { details: { ref: this.ref } });
  }
}

function chunkReader(data: ChunkList): ReaderAt {
  let closed = false;
  const check = (): void => {
    if (closed) throw new FailedPreconditionError("reader is closed");
  };
  return {
    size: data.size,
    async read(offset, length) {
      check();
      if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
        throw new InvalidArgumentError(`invalid read range offset=${offset} length=${length}`);
      }
      return data.read(offset, length);
    },
    createReadStream(options = {}) {
      check();
      const views = data.views(options.offset ?? 0, options.end ?? data.size);
      const stream = new Readable({
        read() {
          // One chunk per pull: backpressure is honoured, nothing is concatenated.
          const next = views.next();
          if (next.done) this.push(null);
          else this.push(Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength));
        },
      });
      if (options.signal) addAbortSignal(options.signal, stream);
      return stream;
    },
    async close() {
      closed = true;
    },
  };
}

function toInfo(digest: Digest, entry: BlobEntry): Info {
  return {
    digest,
    size: entry.data.size,
    createdAt: new Date(entry.createdAt),
    updatedAt: new Date(entry.updatedAt),
    labels: { ...entry.labels },
  };
}

function toStatus(ingest: Ingest): Status {
  const s: Status = {
    ref: ingest.ref,
    offset: ingest.data.size,
    total: ingest.total,
    startedAt: new Date(ingest.startedAt),
    updatedAt: new Date(ingest.updatedAt),
  };
  if (ingest.expected) s.expected = ingest.expected;
  return s;
}

function labelsMatch(labels: Record<string, string>, want: Record<string, string | true>): boolean {
  for (const [k, v] of Object.entries(want)) {
    if (!Object.hasOwn(labels, k)) return false;
    if (v !== true && labels[k] !== v) return false;
  }
  return true;
}

function notFound(digest: Digest): NotFoundError {
  return new NotFoundError(`content ${digest} not found`, { details: { digest } });
}
