import type { ContentStore, Manager } from "../content.ts";
import { copyBlob } from "../content-helpers/copy-blob.ts";
import { ingestRef } from "../content-helpers/ingest-ref.ts";
import { openWriter } from "../content-helpers/open-writer.ts";
import type { Descriptor } from "../descriptor.ts";
import { hasCode, isAlreadyExists, isNotFound, throwIfAborted } from "../errors.ts";
import type { PushOptions, PushOutcome, PushSource, Pusher } from "../transport.ts";

/** Push options a store destination understands in addition to the transport's. */
export interface LocalPushOptions extends PushOptions {
  /** Called when a partial ingest is found and the write continues at `offset` (> 0). */
  onResumed?(offset: number): void;
  /** Called before each wait while another writer (another pull, maybe another process) holds the ingest. */
  onLocked?(info: { attempt: number; delayMs: number }): void;
}

/**
 * A {@link Pusher} into a content store: every blob goes through a resumable ingest keyed by
 * {@link ingestRef}, so an interrupted transfer continues from the ingest's offset (the source is
 * opened at that offset). A tag is recorded with the store's `setName`.
 */
export class LocalPusher implements Pusher {
  readonly #store: ContentStore;

  constructor(store: ContentStore) {
    this.#store = store;
  }

  async exists(desc: Descriptor, options: { signal?: AbortSignal } = {}): Promise<boolean> {
    return hasBlob(this.#store, desc, options.signal);
  }

  async push(desc: Descriptor, source: PushSource, options: LocalPushOptions = {}): Promise<PushOutcome> {
    const { signal } = options;
    const outcome = await this.#write(desc, source, options);
    if (options.tag !== undefined) {
      throwIfAborted(signal);
      await this.#store.setName(options.tag, desc);
    }
    return outcome;
  }

  async tag(desc: Descriptor, tag: string, options: { signal?: AbortSignal } = {}): Promise<void> {
    throwIfAborted(options.signal);
    await this.#store.setName(tag, desc);
  }

  async #write(desc: Descriptor, source: PushSource, options: LocalPushOptions): Promise<PushOutcome> {
    const { signal, onProgress } = options;
    if (await hasBlob(this.#store, desc, signal)) return "exists";
    const ref = ingestRef(desc);
    let waited = false;
    const open = async () => {
      try {
        return await openWriter(this.#store, {
          ref,
          total: desc.size,
          expected: desc.digest,
          signal,
          onLocked: (i) => {
            waited = true;
            options.onLocked?.({ attempt: i.attempt, delayMs: i.delayMs });
          },
        });
      } catch (err) {
        if (isAlreadyExists(err)) return undefined;
        throw err;
      }
    };
    let writer = await open();
    if (!writer) return "exists";
    // Another writer may have committed it while we waited for the lock. (Without a wait the
    // check is skipped: one stat per blob saved; a commit that raced in anyway makes ours end
    // as AlreadyExists, which counts as "exists".)
    if (waited && (await hasBlob(this.#store, desc, signal))) {
      await writer.close();
      // Opening may have created an empty ingest; leave nothing behind (another writer may
      // already hold it again: then it is theirs).
      await this.#store.abort(ref).catch(() => undefined);
      return "exists";
    }
    const resumedFrom = (await writer.status()).offset;
    if (resumedFrom > 0) options.onResumed?.(resumedFrom);
    const copy = (w: NonNullable<typeof writer>) =>
      copyBlob(w, (offset: number) => source.open(offset), { size: desc.size, expected: desc.digest, signal, onProgress });
    let result;
    try {
      result = await copy(writer);
    } catch (err) {
      // A resumed ingest whose old bytes are bad (corrupt, or from a different blob) can never
      // commit; start it over once from zero instead of failing on every run.
      if (resumedFrom === 0 || !hasCode(err, "DigestMismatch")) throw err;
      writer = await open();
      if (!writer) return "exists";
      await writer.truncate(0);
      result = await copy(writer);
    }
    if (result === "exists") {
      await this.#store.abort(ref).catch(() => undefined);
      return "exists";
    }
    return "pushed";
  }
}

/** True when `store` holds the committed blob `desc`. */
export async function hasBlob(store: Pick<Manager, "info">, desc: Descriptor, signal?: AbortSignal): Promise<boolean> {
  try {
    await store.info(desc.digest, { signal });
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}
