// The root of the repository is not a workspace package, so the end-to-end tests reach the
// packages through their sources. One place for these paths keeps every test file tidy.
export * from "../../packages/core/src/index.ts";
export { MemoryStore } from "../../packages/store-memory/src/index.ts";
export { FsStore, openFsStore } from "../../packages/store-fs/src/index.ts";
// The class itself (the package exports only its type): tests spy on its prototype.
export { FsWriter } from "../../packages/store-fs/src/fs-writer.ts";
export { createRegistryResolver } from "../../packages/fetcher/src/index.ts";
export { describeWithRegistry, directIoSupported, makeImage, skopeo, startDockerRegistry, startFaultProxy } from "../../packages/testkit/src/index.ts";
