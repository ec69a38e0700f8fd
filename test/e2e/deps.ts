// The root of the repository is not a workspace package, so the end-to-end tests reach the
// packages through their sources. One place for these paths keeps every test file tidy.
export * from "../../packages/core/src/index.ts";
export { MemoryStore } from "../../packages/store-memory/src/index.ts";
export { FsStore, openFsStore } from "../../packages/store-fs/src/index.ts";
export { createRegistryResolver } from "../../packages/fetcher/src/index.ts";
export { describeWithRegistry, makeImage, skopeo, startFaultProxy } from "../../packages/testkit/src/index.ts";
