import type { Descriptor, Platform } from "../descriptor.ts";
import { isIndexMediaType, isManifestLike } from "../media-types.ts";
import { filterChildren, type Handler } from "./handler.ts";

/**
 * Decides which platforms a walk keeps. `less` orders two matching platforms by preference
 * (true when `a` is preferred over `b`); without it the index order is the preference.
 * `@ferry/core`'s `platformMatcher()` returns one; any object of this shape works.
 */
export interface PlatformComparer {
  match(platform: Platform): boolean;
  less?(a: Platform, b: Platform): boolean;
}

/**
 * Drop the children of an index whose `platform` the matcher rejects (reported as skipped,
 * reason `"platform"`). Children without a `platform` (e.g. attestations, artifacts) are kept,
 * as containerd does.
 */
export function filterPlatforms(inner: Handler, matcher: Pick<PlatformComparer, "match">): Handler {
  return filterChildren(
    inner,
    (child, parent) => !isIndexMediaType(parent.mediaType) || child.platform === undefined || matcher.match(child.platform),
    "platform",
  );
}

/**
 * Keep at most `limit` platform manifests of each index, the most preferred first (by
 * `comparer.less`, else index order); the rest are skipped with reason `"limit"`. Children that
 * are not manifests, or carry no platform, are not counted and always kept. `limit` ≤ 0 means
 * no limit. With `limit = 1` after {@link filterPlatforms} this picks the single best platform.
 */
export function limitManifests(inner: Handler, comparer: Pick<PlatformComparer, "less">, limit: number): Handler {
  return async (desc, ctx) => {
    const children = await inner(desc, ctx);
    if (limit <= 0 || !isIndexMediaType(desc.mediaType)) return children;
    const ranked = children
      .map((c, i) => ({ c, i }))
      .filter(({ c }) => isManifestLike(c.mediaType) && c.platform !== undefined);
    if (ranked.length <= limit) return children;
    const less = comparer.less;
    ranked.sort((a, b) => {
      if (less) {
        const pa = a.c.platform as Platform;
        const pb = b.c.platform as Platform;
        if (less(pa, pb)) return -1;
        if (less(pb, pa)) return 1;
      }
      return a.i - b.i;
    });
    const keep = new Set(ranked.slice(0, limit).map(({ c }) => c));
    const out: Descriptor[] = [];
    for (const c of children) {
      if (!isManifestLike(c.mediaType) || c.platform === undefined || keep.has(c)) out.push(c);
      else ctx.skip(c, "limit");
    }
    return out;
  };
}

/** Filter by `comparer` and keep only the best matching platform of each index. */
export function selectPlatform(inner: Handler, comparer: PlatformComparer): Handler {
  return limitManifests(filterPlatforms(inner, comparer), comparer, 1);
}
