import { contentStoreSuite } from "@ferry/core/testsuite";
import { FsStore, openFsStore } from "../src/index.ts";
import { tempDir } from "./helpers.ts";

// The whole store contract with every ingest (even a 1-byte one) on the hash-write worker, and
// 4 KiB batches so that batches in flight, staged tails and back pressure occur in every case.
contentStoreSuite(
  "fs (hash-write worker for every ingest, 4 KiB batches)",
  async () => {
    const dir = await tempDir();
    return { store: await openFsStore(dir.path, { hashWorkerMinBytes: 1, writeBatchBytes: 4096, fsync: false }), cleanup: dir.cleanup };
  },
  {
    largeBlobSize: 4 * 1024 * 1024,
    reopen: async (store) => ({ store: await openFsStore((store as FsStore).root, { hashWorkerMinBytes: 1, writeBatchBytes: 4096, fsync: false }) }),
  },
);
