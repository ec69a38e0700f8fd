// Public surface of @ferry/core. Everything exported here is supported API.
export * from "./errors.ts";
export * from "./digest.ts";
export * from "./media-types.ts";
export * from "./descriptor.ts";
export type * from "./content.ts";
export type * from "./transport.ts";
