import { childrenOf } from "../children.ts";
import { isManifestLike } from "../media-types.ts";
import type { Handler } from "./handler.ts";

/**
 * The base handler: an index's manifests, a manifest's config and layers (and the `subject` of
 * either, which must exist before a referrer to it is meaningful — see `childrenOf`). Other
 * blobs are leaves.
 */
export const childrenHandler: Handler = async (desc, ctx) => {
  if (!isManifestLike(desc.mediaType)) return [];
  return childrenOf(desc, await ctx.content(desc));
};
