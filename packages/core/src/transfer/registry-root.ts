/**
 * What root a registry destination gets when the source's root is an index. A registry refuses
 * an index whose manifests it does not have (distribution checks every entry), so an index can
 * only be pushed whole. Two cases need a decision before any byte moves:
 *
 * - a platform selection keeps some of the index's manifests: exactly one kept → that platform's
 *   manifest is pushed alone and becomes the root (as `skopeo copy` without `--all` does); more
 *   than one but not all → `InvalidArgument`;
 * - the source store holds only some of the index's manifests (a single-platform pull):
 *   `NotFound`, naming what is missing and what is there, before anything is uploaded.
 */
import type { ContentStore } from "../content.ts";
import type { Descriptor } from "../descriptor.ts";
import { InvalidArgumentError, NotFoundError } from "../errors.ts";
import type { Handler, WalkContext } from "../graph/handler.ts";
import { hasBlob } from "../local/local-pusher.ts";
import { isIndexMediaType, isManifestLike } from "../media-types.ts";
import { formatPlatform } from "../platform.ts";
import { childrenOf } from "../children.ts";

export interface RegistryRootOptions {
  root: Descriptor;
  /** Reads a manifest or index (size-capped, verified). */
  load(desc: Descriptor): Promise<Uint8Array>;
  /** The transfer's handler: decides which children of the index are kept. */
  handler: Handler;
  /** The source, when it is a content store (only a store can hold part of an index). */
  store?: ContentStore;
  signal: AbortSignal;
}

/** The descriptor to push as the root; `root` itself unless the index must be narrowed. */
export async function registryRoot(o: RegistryRootOptions): Promise<Descriptor> {
  const { root, signal } = o;
  if (!isIndexMediaType(root.mediaType)) return root;
  const bytes = await o.load(root);
  const listed = childrenOf(root, bytes).filter((d) => isManifestLike(d.mediaType));
  // A dry run of the handler on the root alone: skips are reported by the walk later, not here.
  const ctx: WalkContext = { signal, content: (d) => (d.digest === root.digest ? Promise.resolve(bytes) : o.load(d)), skip: () => undefined };
  const kept = (await o.handler(root, ctx)).filter((d) => isManifestLike(d.mediaType));
  const label = (d: Descriptor): string => (d.platform ? formatPlatform(d.platform) : d.digest);

  const missing: Descriptor[] = [];
  if (o.store) {
    for (const d of kept) if (!(await hasBlob(o.store, d, signal))) missing.push(d);
  }

  if (kept.length === listed.length) {
    if (missing.length === 0) return root;
    const present = kept.filter((d) => !missing.includes(d));
    throw new NotFoundError(
      `the store holds ${present.length} of the ${listed.length} manifests of index ${root.digest} ` +
        `(missing ${missing.map(label).join(", ")}); a registry refuses an incomplete index: ` +
        (present.length > 0 ? `select one platform (e.g. ${label(present[0] as Descriptor)}) to push its image alone, or pull every platform first` : "pull every platform first"),
      { details: { digest: root.digest, missing: missing.map((d) => d.digest), present: present.map(label) } },
    );
  }
  if (kept.length === 1) {
    const only = kept[0] as Descriptor;
    if (missing.length > 0) {
      throw new NotFoundError(`the store does not hold the ${label(only)} manifest ${only.digest} of index ${root.digest}`, {
        details: { digest: root.digest, missing: [only.digest] },
      });
    }
    return { mediaType: only.mediaType, digest: only.digest, size: only.size, ...(only.platform ? { platform: only.platform } : {}) };
  }
  if (kept.length === 0) {
    throw new NotFoundError(`no manifest of index ${root.digest} matches the platform selection`, {
      details: { digest: root.digest, listed: listed.map(label) },
    });
  }
  throw new InvalidArgumentError(
    `the platform selection keeps ${kept.length} of the ${listed.length} manifests of index ${root.digest}; ` +
      "a registry refuses an incomplete index: select every platform or exactly one",
    { details: { digest: root.digest, kept: kept.map(label), listed: listed.map(label) } },
  );
}
