// Public surface of @ferry/core. Everything exported here is supported API.
export * from "./errors.ts";
export * from "./digest.ts";
export * from "./media-types.ts";
export * from "./descriptor.ts";
export type * from "./content.ts";
export type * from "./transport.ts";
export * from "./status/events.ts";
export type * from "./status/operation.ts";
export * from "./content-helpers/ingest-ref.ts";
export * from "./content-helpers/open-writer.ts";
export * from "./content-helpers/blob-source.ts";
export * from "./content-helpers/copy-blob.ts";
export * from "./content-helpers/write-blob.ts";
export * from "./content-helpers/read-blob.ts";
export * from "./manifest.ts";
export * from "./validate-manifest.ts";
export * from "./platform.ts";
export * from "./children.ts";
