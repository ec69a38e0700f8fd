import { describe } from "vitest";
import { commitCases } from "./cases-commit.ts";
import { concurrencyCases } from "./cases-concurrency.ts";
import { ingestCases } from "./cases-ingest.ts";
import { managerCases } from "./cases-manager.ts";
import { nameCases } from "./cases-names.ts";
import { readerCases } from "./cases-reader.ts";
import { resumeCases } from "./cases-resume.ts";
import { sharedCases } from "./cases-shared.ts";
import { type ContentStoreSuiteOptions, createContext, type StoreFactory } from "./context.ts";

/**
 * Register the content-store conformance cases with vitest. Call it at the top level of a test
 * file; `factory` is called for every case and must return an empty store. Give
 * `options.reopen` to also run the cases that need two handles on one storage.
 *
 * ```ts
 * contentStoreSuite("memory", async () => ({ store: new MemoryStore() }));
 * ```
 */
export function contentStoreSuite(name: string, factory: StoreFactory, options?: ContentStoreSuiteOptions): void {
  const ctx = createContext(factory, options);
  describe(`content store conformance: ${name}`, () => {
    commitCases(ctx);
    ingestCases(ctx);
    readerCases(ctx);
    managerCases(ctx);
    concurrencyCases(ctx);
    resumeCases(ctx);
    nameCases(ctx);
    sharedCases(ctx);
  });
}
