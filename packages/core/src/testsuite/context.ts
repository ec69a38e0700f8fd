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
}

/** Internal: how case files register a test against a fresh store. */
export interface SuiteContext {
  options: Required<ContentStoreSuiteOptions>;
  test(name: string, fn: (store: ContentStore) => Promise<void>): void;
}

export function createContext(factory: StoreFactory, options: ContentStoreSuiteOptions = {}): SuiteContext {
  const opts: Required<ContentStoreSuiteOptions> = {
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
  };
}
