// Public surface of @ferry/core/testsuite: the conformance suite every ContentStore runs.
export { contentStoreSuite } from "./content-store-suite.ts";
export type { ContentStoreSuiteOptions, StoreFactory, StoreUnderTest } from "./context.ts";
export { lendingWriter } from "./lending-writer.ts";
