/** What a store directory holds of an image after an interrupted pull (the resume case). */
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Descriptor } from "../../packages/core/src/index.ts";

/**
 * Bytes of `image` a store directory holds: a committed blob counts once with its size, else the
 * partial data of its ingest (found by the ref file), so a blob caught between publish and ingest
 * cleanup is not counted twice.
 */
export async function storedBytes(root: string, image: { descriptors: Descriptor[] }): Promise<number> {
  const partial = new Map<string, number>();
  for (const key of await readdir(join(root, "ingest")).catch(() => [] as string[])) {
    const dir = join(root, "ingest", key);
    const ref = await readFile(join(dir, "ref"), "utf8").catch(() => undefined);
    const size = await stat(join(dir, "data")).then((s) => s.size, () => 0);
    if (ref !== undefined) partial.set(ref.trim(), size);
  }
  let n = 0;
  for (const d of image.descriptors) {
    const [alg, hex] = d.digest.split(":") as [string, string];
    const committed = await stat(join(root, "blobs", alg, hex)).then((s) => s.size === d.size, () => false);
    if (committed) n += d.size;
    else n += Math.min(d.size, [...partial].find(([ref]) => ref.endsWith(d.digest))?.[1] ?? 0);
  }
  return n;
}
