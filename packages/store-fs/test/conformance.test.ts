import { contentStoreSuite } from "@ferry/core/testsuite";
import { FsStore, hashWasmDigesters, openFsStore } from "../src/index.ts";
import { tempDir } from "./helpers.ts";

// Every case gets a fresh layout in a temp dir; `reopen` opens a second, independent FsStore on
// the same directory, as another process would.
contentStoreSuite(
  "fs",
  async () => {
    const dir = await tempDir();
    return { store: await openFsStore(dir.path), cleanup: dir.cleanup };
  },
  { reopen: async (store) => ({ store: await openFsStore((store as FsStore).root) }) },
);

// The same contract with the checkpointing hasher and tiny batches/checkpoints, so the
// checkpoint paths run on every case too.
contentStoreSuite(
  "fs (hash-wasm, 4 KiB batches, 64 KiB checkpoints)",
  async () => {
    const dir = await tempDir();
    const store = await openFsStore(dir.path, { digesters: hashWasmDigesters, writeBatchBytes: 4096, checkpointBytes: 65536, fsync: false });
    return { store, cleanup: dir.cleanup };
  },
  {
    largeBlobSize: 4 * 1024 * 1024,
    reopen: async (store) => ({
      store: await openFsStore((store as FsStore).root, { digesters: hashWasmDigesters, writeBatchBytes: 4096, checkpointBytes: 65536, fsync: false }),
    }),
  },
);
