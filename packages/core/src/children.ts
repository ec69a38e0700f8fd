/**
 * The edges of the content graph: which descriptors a manifest or index points at. Walkers,
 * pullers and pushers call {@link childrenOf} on each fetched node; blobs (layers, configs,
 * anything that is not a manifest) are leaves.
 */
import type { Descriptor } from "./descriptor.ts";
import type { ParsedManifest } from "./manifest.ts";
import { isManifestLike } from "./media-types.ts";
import { parseManifest } from "./validate-manifest.ts";

export interface ChildrenOptions {
  /** Largest manifest accepted, in bytes. Default `MaxManifestBytes` (4 MiB). */
  maxSize?: number;
}

/** True for image manifests and indexes (OCI and Docker), the nodes that have children. */
export function isManifestDescriptor(desc: Pick<Descriptor, "mediaType">): boolean {
  return isManifestLike(desc.mediaType);
}

/**
 * The children of the node `desc` whose content is `bytes`: an index's `manifests` in order;
 * a manifest's config, then its layers in order, then its `subject` if present; nothing for
 * any other media type. The bytes are validated with `parseManifest`, using `desc.mediaType`
 * as the expected type (a mismatch is an `InvalidManifest` error). Checking that the bytes
 * match `desc.digest` is the fetcher's or store's job and is not repeated here.
 */
export function childrenOf(desc: Descriptor, bytes: Uint8Array | string, options: ChildrenOptions = {}): Descriptor[] {
  if (!isManifestDescriptor(desc)) return [];
  const parsed = parseManifest(bytes, {
    mediaType: desc.mediaType,
    ...(options.maxSize === undefined ? {} : { maxSize: options.maxSize }),
  });
  return childrenOfParsed(parsed);
}

/** The children of an already parsed manifest or index, in the order {@link childrenOf} gives. */
export function childrenOfParsed(parsed: ParsedManifest): Descriptor[] {
  if (parsed.kind === "index") {
    const { manifests, subject } = parsed.index;
    return subject ? [...manifests, subject] : [...manifests];
  }
  const { config, layers, subject } = parsed.manifest;
  return subject ? [config, ...layers, subject] : [config, ...layers];
}
