// Public surface of @ferry/store-memory.
export { createMemoryStore, MemoryStore, type MemoryStoreOptions } from "./memory-store.ts";
