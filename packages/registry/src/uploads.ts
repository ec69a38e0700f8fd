/**
 * Upload sessions. A session's bytes live in the content store's ingest `upload-<uuid>`; its
 * repository and start time live in the registry storage. Within one process the store writer
 * (and so the running hash) stays open between PATCHes until it has been idle for
 * `writerIdleMs`; another process (or this one after a restart) reopens the ingest, and the store
 * rebuilds the hash: by re-reading the data, or from a checkpoint when its digester can save state.
 */
import { randomUUID } from "node:crypto";
import type { Readable } from "node:stream";
import {
  isAlreadyExists,
  isNotFound,
  openWriter,
  hasCode,
  throwIfAborted,
  type ContentStore,
  type Ingester,
  type Digest,
  type Writer,
} from "@ferry/core";
import { OciHttpError } from "./oci-errors.ts";
import type { RegistryStorage, UploadSession } from "./storage.ts";

export const UploadRefPrefix = "upload-";

export function uploadRef(uuid: string): string {
  return `${UploadRefPrefix}${uuid}`;
}

export interface UploadManagerOptions {
  /** Close a session's writer after this much idleness (ms). */
  writerIdleMs: number;
  /** How long to wait for a writer another process holds (ms). */
  lockWaitMs: number;
}

interface OpenSession {
  writer: Writer;
  timer?: NodeJS.Timeout;
}

export class UploadManager {
  readonly #store: ContentStore;
  readonly #storage: RegistryStorage;
  readonly #options: UploadManagerOptions;
  readonly #open = new Map<string, OpenSession>();
  // One operation per session at a time: PATCHes of one session are applied in arrival order.
  readonly #queues = new Map<string, Promise<unknown>>();

  constructor(store: ContentStore, storage: RegistryStorage, options: UploadManagerOptions) {
    this.#store = store;
    this.#storage = storage;
    this.#options = options;
  }

  /** Start a session in `repo`; its ingest exists from now on. */
  async create(repo: string, signal?: AbortSignal): Promise<UploadSession> {
    const now = new Date().toISOString();
    const session: UploadSession = { uuid: randomUUID(), repository: repo, startedAt: now, updatedAt: now };
    await this.#storage.putUpload(session);
    throwIfAborted(signal);
    await this.#serial(session.uuid, async () => {
      // The ingest is created and closed: the first chunk reopens it. Kept open, a flood of
      // POSTs held a file descriptor each (store-fs) until the idle timer: EMFILE for everyone.
      const writer = await this.#store.writer({ ref: uploadRef(session.uuid) });
      await writer.close();
    });
    return session;
  }

  /** The session, checked to belong to `repo`; throws BLOB_UPLOAD_UNKNOWN otherwise. */
  async get(uuid: string, repo: string): Promise<UploadSession> {
    const s = await this.#storage.getUpload(uuid);
    if (s === undefined || s.repository !== repo) {
      throw new OciHttpError("BLOB_UPLOAD_UNKNOWN", "upload session unknown", { detail: { uuid } });
    }
    return s;
  }

  /**
   * Bytes received so far. An open writer is flushed first, so the offset reported is also what
   * another process (or this one after a crash) would find in the ingest.
   */
  async offset(uuid: string): Promise<number> {
    const open = this.#open.get(uuid);
    if (open !== undefined) {
      try {
        await open.writer.flush?.();
        return (await open.writer.status()).offset;
      } catch (err) {
        // Closed meanwhile (idle timer, a finishing PUT, a failed chunk): the ingest answers.
        if (!hasCode(err, "FailedPrecondition")) throw err;
      }
    }
    try {
      return (await this.#store.status(uploadRef(uuid))).offset;
    } catch (err) {
      if (isNotFound(err)) throw new OciHttpError("BLOB_UPLOAD_UNKNOWN", "upload data is gone", { detail: { uuid } });
      throw err;
    }
  }

  /**
   * Append `body` to the session, checking first that it starts at `start` (when given).
   * Returns the new offset. Bytes received before a failure stay (the client asks for the
   * offset and goes on from there).
   */
  async append(
    session: UploadSession,
    body: Readable,
    start: number | undefined,
    signal: AbortSignal,
  ): Promise<number> {
    return this.#serial(session.uuid, async () => {
      const writer = await this.#acquire(session.uuid, signal);
      let ok = true;
      try {
        const offset = (await writer.status()).offset;
        if (start !== undefined && start !== offset) {
          body.resume();
          await writer.flush?.();
          throw rangeError(offset, `chunk starts at ${start}, the upload is at ${offset}`);
        }
        ok = false;
        for await (const chunk of body as AsyncIterable<Buffer>) await writer.write(chunk);
        // Acknowledged bytes must survive this process: out of the store's write buffer before
        // the 202 (a crash then loses nothing acknowledged; a power loss still may, no fsync).
        await writer.flush?.();
        ok = true;
        const end = (await writer.status()).offset;
        await this.#touch(session);
        return end;
      } finally {
        if (!ok) {
          // A failed chunk (client gone, store error) may leave the writer unusable: close it so
          // the next request reopens the ingest at the offset that really reached the store.
          this.#forget(session.uuid);
          await writer.close().catch(() => undefined);
          await this.#touch(session).catch(() => undefined);
        } else {
          this.#keep(session.uuid, writer);
        }
      }
    });
  }

  /**
   * Verify and publish the session's data as `digest`; the session and its ingest are gone
   * afterwards, whether it succeeded or not. Returns the blob size.
   */
  async finish(session: UploadSession, digest: Digest, signal: AbortSignal): Promise<number> {
    return this.#serial(session.uuid, async () => {
      const writer = await this.#acquire(session.uuid, signal);
      this.#forget(session.uuid);
      const size = (await writer.status()).offset;
      try {
        await writer.commit(size, digest);
      } catch (err) {
        if (!isAlreadyExists(err)) {
          await this.#discard(session.uuid, writer);
          if (hasCode(err, "DigestMismatch") || hasCode(err, "InvalidDigest")) {
            throw new OciHttpError("DIGEST_INVALID", "uploaded content does not match the digest", {
              detail: { digest },
              cause: err,
            });
          }
          throw err;
        }
        // Already in the store: the upload still succeeds; its own copy is dropped.
      }
      await this.#discard(session.uuid, writer);
      return size;
    });
  }

  /** Cancel: drop data and session. */
  async cancel(session: UploadSession, signal: AbortSignal): Promise<void> {
    await this.#serial(session.uuid, async () => {
      const writer = await this.#acquire(session.uuid, signal).catch((err: unknown) => {
        if (err instanceof OciHttpError && err.ociCode === "BLOB_UPLOAD_UNKNOWN") return undefined;
        throw err;
      });
      this.#forget(session.uuid);
      await this.#discard(session.uuid, writer);
    });
  }

  /**
   * Remove sessions idle longer than `maxIdleMs` (and orphaned `upload-` ingests). Sessions
   * whose writer another process holds are left for later. Returns the purged ids.
   */
  async purge(maxIdleMs: number): Promise<string[]> {
    const now = Date.now();
    const purged: string[] = [];
    const known = new Set<string>();
    for (const s of await this.#storage.listUploads()) {
      known.add(s.uuid);
      if (now - Date.parse(s.updatedAt) <= maxIdleMs) continue;
      if (this.#queues.has(s.uuid)) continue; // busy right now
      // In the session's queue, so no request of this process can interleave with the purge.
      const done = await this.#serial(s.uuid, async () => {
        const fresh = await this.#storage.getUpload(s.uuid);
        if (fresh === undefined || Date.now() - Date.parse(fresh.updatedAt) <= maxIdleMs) return false;
        const open = this.#open.get(s.uuid);
        this.#forget(s.uuid);
        if (open !== undefined) await open.writer.close();
        try {
          await this.#store.abort(uploadRef(s.uuid));
        } catch (err) {
          if (hasCode(err, "Locked")) return false; // another process is writing it
          if (!isNotFound(err)) throw err;
        }
        await this.#storage.deleteUpload(s.uuid);
        return true;
      });
      if (done) purged.push(s.uuid);
    }
    for (const st of await this.#store.listStatuses({ refPrefix: UploadRefPrefix })) {
      const uuid = st.ref.slice(UploadRefPrefix.length);
      if (known.has(uuid) || now - st.updatedAt.getTime() <= maxIdleMs) continue;
      // Re-check: the session may have been created after the listing above.
      if ((await this.#storage.getUpload(uuid)) !== undefined) continue;
      try {
        await this.#store.abort(st.ref);
        purged.push(uuid);
      } catch (err) {
        if (!isNotFound(err) && !hasCode(err, "Locked")) throw err;
      }
    }
    return purged;
  }

  /** Close every open writer (the ingests stay, resumable by the next server). */
  async closeAll(): Promise<void> {
    const open = [...this.#open.entries()];
    this.#open.clear();
    for (const [, o] of open) {
      if (o.timer !== undefined) clearTimeout(o.timer);
      await o.writer.close().catch(() => undefined);
    }
  }

  async #acquire(uuid: string, signal: AbortSignal): Promise<Writer> {
    const open = this.#open.get(uuid);
    if (open !== undefined) {
      if (open.timer !== undefined) clearTimeout(open.timer);
      open.timer = undefined;
      return open.writer;
    }
    const ref = uploadRef(uuid);
    // Refuse to resurrect a session whose data was purged or never existed.
    try {
      await this.#store.status(ref);
    } catch (err) {
      if (isNotFound(err)) throw new OciHttpError("BLOB_UPLOAD_UNKNOWN", "upload data is gone", { detail: { uuid } });
      throw err;
    }
    const wait = AbortSignal.any([signal, AbortSignal.timeout(this.#options.lockWaitMs)]);
    try {
      // The signal only bounds the wait for the lock: the writer outlives this request (it is
      // kept open for the next chunk), so it must not be bound to any request's signal.
      const store = this.#store;
      const unbound: Ingester = { writer: ({ signal: _ignored, ...o }) => store.writer(o) };
      return await openWriter(unbound, { ref, signal: wait });
    } catch (err) {
      if (hasCode(err, "Aborted") && !signal.aborted) {
        throw new OciHttpError("UNAVAILABLE", "upload session is busy in another server", {
          headers: { "Retry-After": "1" },
          cause: err,
        });
      }
      throw err;
    }
  }

  #keep(uuid: string, writer: Writer): void {
    const prev = this.#open.get(uuid);
    if (prev?.timer !== undefined) clearTimeout(prev.timer);
    const timer = setTimeout(() => {
      if (this.#open.get(uuid)?.writer !== writer) return;
      void this.#serial(uuid, async () => {
        if (this.#open.get(uuid)?.writer !== writer) return;
        this.#open.delete(uuid);
        await writer.close();
      }).catch(() => undefined);
    }, this.#options.writerIdleMs);
    timer.unref();
    this.#open.set(uuid, { writer, timer });
  }

  #forget(uuid: string): void {
    const o = this.#open.get(uuid);
    if (o?.timer !== undefined) clearTimeout(o.timer);
    this.#open.delete(uuid);
  }

  async #discard(uuid: string, writer: Writer | undefined): Promise<void> {
    if (writer !== undefined) await writer.close().catch(() => undefined);
    try {
      await this.#store.abort(uploadRef(uuid));
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    await this.#storage.deleteUpload(uuid);
  }

  async #touch(session: UploadSession): Promise<void> {
    session.updatedAt = new Date().toISOString();
    await this.#storage.putUpload(session);
  }

  async #serial<T>(uuid: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#queues.get(uuid) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.#queues.set(uuid, tail);
    void tail.then(() => {
      if (this.#queues.get(uuid) === tail) this.#queues.delete(uuid);
    });
    return run;
  }
}

export function rangeError(offset: number, message: string): OciHttpError {
  return new OciHttpError("RANGE_INVALID", message, {
    headers: { Range: uploadRange(offset) },
    detail: { offset },
  });
}

/** The upload `Range` header value: `0-<last byte>`, and `0-0` before the first byte. */
export function uploadRange(offset: number): string {
  return `0-${Math.max(0, offset - 1)}`;
}
