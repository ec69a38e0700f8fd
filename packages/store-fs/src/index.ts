// Public surface of @ferry/store-fs.
export { FsStore, openFsStore, type FsStoreOptions } from "./fs-store.ts";
export type { FsWriter, ResumeInfo } from "./fs-writer.ts";
export { hashWasmDigesters, type AsyncDigesterFactory } from "./digesters.ts";
// Exposed for tools that inspect a store directory without opening it.
export { ingestKey, validateName, validateRef } from "./layout.ts";
