/**
 * A platform selection that keeps no platform manifest anywhere under the root is `NotFound`,
 * before anything is written, naming the platforms the graph has (as containerd's "no match
 * for platform in manifest"): such a pull moved nothing and still named the index.
 *
 * Decided over the whole graph, through nested indexes: an index of per-platform indexes has
 * sub-indexes that rightly keep nothing. Entries without a platform (attestations, artifacts)
 * are no match, and a graph with no platform manifest at all (an artifact index) passes.
 */
import type { Descriptor } from "../descriptor.ts";
import { childrenOf } from "../children.ts";
import { NotFoundError, throwIfAborted } from "../errors.ts";
import type { Handler, WalkContext } from "../graph/handler.ts";
import { isIndexMediaType, isManifestLike } from "../media-types.ts";
import { formatPlatform } from "../platform.ts";

export interface PlatformMatchOptions {
  root: Descriptor;
  /** Reads a manifest or index (size-capped, verified). */
  load(desc: Descriptor): Promise<Uint8Array>;
  /** The transfer's handler: decides which children of an index are kept. */
  handler: Handler;
  signal: AbortSignal;
}

/** How deep nested indexes are followed (as registryRoot). */
const MAX_INDEX_DEPTH = 8;

export async function requirePlatformMatch(o: PlatformMatchOptions): Promise<void> {
  if (!isIndexMediaType(o.root.mediaType)) return;
  const ctx: WalkContext = { signal: o.signal, content: (d) => o.load(d), skip: () => undefined };
  const seen = new Set<string>();
  const offered = new Set<string>();
  let matched = false;
  const visit = async (index: Descriptor, depth: number): Promise<void> => {
    if (matched || depth > MAX_INDEX_DEPTH || seen.has(index.digest)) return;
    seen.add(index.digest);
    throwIfAborted(o.signal);
    const children = childrenOf(index, await o.load(index)).filter((d) => isManifestLike(d.mediaType));
    const kept = new Set((await o.handler(index, ctx)).map((d) => d.digest));
    for (const c of children) {
      if (isIndexMediaType(c.mediaType)) {
        if (kept.has(c.digest)) await visit(c, depth + 1);
      } else if (c.platform !== undefined) {
        offered.add(formatPlatform(c.platform));
        if (kept.has(c.digest)) matched = true;
      }
    }
  };
  await visit(o.root, 1);
  if (matched || offered.size === 0) return;
  const platforms = [...offered];
  throw new NotFoundError(`no manifest of index ${o.root.digest} matches the platform selection (it has ${platforms.join(", ")})`, {
    details: { digest: o.root.digest, platforms },
  });
}
