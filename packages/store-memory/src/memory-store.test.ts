import { contentStoreSuite } from "@ferry/core/testsuite";
import { MemoryStore } from "./memory-store.ts";

contentStoreSuite("memory", async () => ({ store: new MemoryStore() }));
