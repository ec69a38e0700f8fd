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
 *
 * Nested indexes count through their leaves: the decision is over the image manifests at the
 * bottom of the tree, so a selection that drops a platform inside a nested index also either
 * keeps exactly one manifest (pushed alone) or is refused up front.
 */
import type { ContentStore } from "../content.ts";
import type { Descriptor } from "../descriptor.ts";
import { InvalidArgumentError, InvalidManifestError, NotFoundError, throwIfAborted } from "../errors.ts";
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

/** How deep nested indexes may go (real images use one or two levels). */
const MAX_INDEX_DEPTH = 8;
/** How many distinct indexes one root may hold. */
const MAX_INDEXES = 10_000;

function uniqueByDigest(list: Descriptor[]): Descriptor[] {
  const seen = new Set<string>();
  return list.filter((d) => !seen.has(d.digest) && seen.add(d.digest) !== undefined);
}

/** The descriptor to push as the root; `root` itself unless the index must be narrowed. */
export async function registryRoot(o: RegistryRootOptions): Promise<Descriptor> {
  const { root, signal } = o;
  if (!isIndexMediaType(root.mediaType)) return root;
  const loaded = new Map<string, Uint8Array>();
  const load = async (d: Descriptor): Promise<Uint8Array> => {
    let b = loaded.get(d.digest);
    if (b === undefined) loaded.set(d.digest, (b = await o.load(d)));
    return b;
  };
  // A dry run of the handler: skips are reported by the walk later, not here.
  const ctx: WalkContext = { signal, content: load, skip: () => undefined };
  // The units a registry could take as the root: an index the selection keeps whole, or a
  // manifest. A partly kept nested index is no unit; its kept units count instead. Each index is
  // decided once (an index may list the same child many times, on every level: without this,
  // K copies on 8 levels cost K^7 parses, and never let an abort through).
  interface Units {
    whole: boolean;
    kept: Descriptor[];
    listed: Descriptor[];
  }
  const decided = new Map<string, Promise<Units>>();
  const decide = (index: Descriptor, depth: number): Promise<Units> => {
    let p = decided.get(index.digest);
    if (p === undefined) decided.set(index.digest, (p = decideOnce(index, depth)));
    return p;
  };
  const decideOnce = async (index: Descriptor, depth: number): Promise<Units> => {
    throwIfAborted(signal);
    if (depth > MAX_INDEX_DEPTH) {
      throw new InvalidManifestError(`index ${root.digest} nests indexes more than ${MAX_INDEX_DEPTH} deep`, { details: { digest: root.digest } });
    }
    if (decided.size > MAX_INDEXES) {
      throw new InvalidManifestError(`index ${root.digest} holds more than ${MAX_INDEXES} indexes`, { details: { digest: root.digest } });
    }
    const all = childrenOf(index, await load(index)).filter((d) => isManifestLike(d.mediaType));
    // Beside platform manifests, an entry without a platform (an attestation, an artifact) is
    // no image to choose: it rides along when the index goes whole and is left out otherwise.
    const children = all.some((d) => d.platform !== undefined) ? all.filter((d) => d.platform !== undefined) : all;
    const keptHere = new Set((await o.handler(index, ctx)).map((d) => d.digest));
    const out: Units = { whole: true, kept: [], listed: [] };
    for (const child of children) {
      if (!keptHere.has(child.digest)) {
        out.whole = false;
        out.listed.push(child);
        continue;
      }
      if (isIndexMediaType(child.mediaType)) {
        const sub = await decide(child, depth + 1);
        if (!sub.whole) {
          out.whole = false;
          out.kept.push(...sub.kept);
          out.listed.push(...sub.listed);
          continue;
        }
      }
      // A manifest, or a nested index kept whole: one unit.
      out.kept.push(child);
      out.listed.push(child);
    }
    return out;
  };
  // Kept whole, the root's children are its units (kept = listed) and the root goes as it is,
  // unless a store source lacks some of them. A unit listed twice counts once.
  const units = await decide(root, 1);
  const kept = uniqueByDigest(units.kept);
  const listed = uniqueByDigest(units.listed);
  const label = (d: Descriptor): string => (d.platform ? formatPlatform(d.platform) : d.digest);

  // Units the source store lacks, whole or in part (a nested index kept whole needs its manifests too).
  const missing: Descriptor[] = [];
  const store = o.store;
  if (store) {
    const checked = new Map<string, Promise<boolean>>();
    const complete = (d: Descriptor, depth: number): Promise<boolean> => {
      let p = checked.get(d.digest);
      if (p === undefined) {
        p = (async () => {
          throwIfAborted(signal);
          if (!(await hasBlob(store, d, signal))) return false;
          if (!isIndexMediaType(d.mediaType) || depth > MAX_INDEX_DEPTH) return true;
          for (const c of childrenOf(d, await load(d)).filter((x) => isManifestLike(x.mediaType))) if (!(await complete(c, depth + 1))) return false;
          return true;
        })();
        checked.set(d.digest, p);
      }
      return p;
    };
    for (const d of kept) if (!(await complete(d, 2))) missing.push(d);
    if (units.whole) {
      // The index goes as it is: its entries without a platform (attestations) go too.
      const keptDigests = new Set(kept.map((d) => d.digest));
      for (const c of childrenOf(root, await load(root))) {
        if (isManifestLike(c.mediaType) && !keptDigests.has(c.digest) && !(await complete(c, 2))) missing.push(c);
      }
    }
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
