import type { ContentStore } from "@ferry/core";
import { contentStoreSuite } from "@ferry/core/testsuite";
import { MemoryStore } from "./memory-store.ts";

/** A second handle on the same memory: a distinct object that shares every blob, ingest and lock. */
function handle(store: ContentStore): ContentStore {
  return {
    readerAt: (d, o) => store.readerAt(d, o),
    writer: (o) => store.writer(o),
    info: (d, o) => store.info(d, o),
    update: (i, f) => store.update(i, f),
    walk: (fn, f) => store.walk(fn, f),
    delete: (d) => store.delete(d),
    status: (r) => store.status(r),
    listStatuses: (f) => store.listStatuses(f),
    abort: (r) => store.abort(r),
    getName: (n) => store.getName(n),
    setName: (n, d) => store.setName(n, d),
    listNames: () => store.listNames(),
    deleteName: (n) => store.deleteName(n),
  };
}

contentStoreSuite("memory", async () => ({ store: new MemoryStore() }), {
  reopen: async (store) => ({ store: handle(store) }),
});
