/**
 * The embedded registry (@ferry/registry on @ferry/store-fs) in a process of its own, for the
 * benchmark's case 6. `embedded-server DIR` listens on a free 127.0.0.1 port and prints one JSON
 * line `{"url":…}`; it runs until killed.
 */
import { join } from "node:path";
import { createRegistry, FsRegistryStorage } from "../packages/registry/src/index.ts";
import { openFsStore } from "../packages/store-fs/src/index.ts";

const dir = process.argv[2];
if (dir === undefined) {
  process.stderr.write("usage: embedded-server DIR\n");
  process.exit(2);
}
const store = await openFsStore(join(dir, "store"));
const registry = createRegistry({ store, storage: new FsRegistryStorage(join(dir, "meta")) });
const s = await registry.listen(0, "127.0.0.1");
process.stdout.write(`${JSON.stringify({ url: s.url })}\n`);
