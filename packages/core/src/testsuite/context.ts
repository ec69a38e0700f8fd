import { it } from "vitest";
import type { ContentStore } from "../content.ts";

/** What a store under test hands the suite. */
export interface StoreUnderTest {
  store: ContentStore;
  /** Release whatever the factory created (temp dirs, handles). Runs after every case. */
  cleanup?: () => Promise<void>;
}

export type StoreFactory = () => Promise<StoreUnderTest>;

export interface ContentStoreSuiteOptions {
  /**
   * Resolution of the store's `Info`/`Status` timestamps in ms (a store that persists seconds
   * says 1000). Time-window checks widen by this much. Default 1.
   */
  timestampGranularityMs?: number;
  /** Size of the largest of the five concurrent writers, in bytes. Default 32 MiB. */
  largeBlobSize?: number;
  /** Per-case timeout in ms. Default 60000. */
  timeoutMs?: number;
  /**
   * Open a second, independent handle on the storage behind `store`, as another process would.
   * When given, the shared-storage cases run: persistence of blobs, ingests and names across
   * handles, and locks that hold across them. Default: those cases are skipped.
   */
  reopen?: (store: ContentStore) => Promise<StoreUnderTest>;
}

/** Internal: how case files register a test against a fresh store. */
export interface SuiteContext {
  options: Required<Omit<ContentStoreSuiteOptions, "reopen">>;
  test(name: string, fn: (store: ContentStore) => Promise<void>): void;
  /** Registers a case that needs a second handle; skipped when the store has no `reopen`. */
  testShared(name: string, fn: (store: ContentStore, other: ContentStore) => Promise<void>): void;
}

export function createContext(factory: StoreFactory, options: ContentStoreSuiteOptions = {}): SuiteContext {
  const opts: Required<Omit<ContentStoreSuiteOptions, "reopen">> = {
    timestampGranularityMs: options.timestampGranularityMs ?? 1,
    largeBlobSize: options.largeBlobSize ?? 32 * 1024 * 1024,
    timeoutMs: options.timeoutMs ?? 60_000,
  };
  return {
    options: opts,
    test(name, fn) {
      it(
        name,
        async () => {
          // A fresh store per case: cases must not see each other's blobs or ingests.
          const { store, cleanup } = await factory();
          try {
            await fn(store);
          } finally {
            await cleanup?.();
          }
        },
        opts.timeoutMs,
      );
    },
    testShared(name, fn) {
      const reopen = options.reopen;
      if (!reopen) {
        it.skip(`${name} (needs the reopen option)`, () => {});
        return;
      }
      this.test(name, async (store) => {
        const other = await reopen(store);
        try {
          await fn(store, other.store);
        } finally {
          await other.cleanup?.();
        }
      });
    },
  };
}
