import type { Descriptor } from "../descriptor.ts";
import { isConfigMediaType, isIndexMediaType, isManifestMediaType } from "../media-types.ts";

/**
 * The ingest key for a descriptor: `index-<digest>`, `manifest-<digest>`, `config-<digest>` or
 * `layer-<digest>`. It depends only on the descriptor, so two pulls of the same blob (in one
 * process, across processes, or across runs) meet on the same ingest: the second waits for the
 * first's lock and then finds the content committed, and an interrupted pull resumes.
 */
export function ingestRef(desc: Pick<Descriptor, "mediaType" | "digest">): string {
  return `${ingestKind(desc.mediaType)}-${desc.digest}`;
}

export type IngestKind = "index" | "manifest" | "config" | "layer";

/** The prefix {@link ingestRef} uses for a media type; anything unrecognised is a layer. */
export function ingestKind(mediaType: string | undefined): IngestKind {
  if (isIndexMediaType(mediaType)) return "index";
  if (isManifestMediaType(mediaType)) return "manifest";
  if (isConfigMediaType(mediaType)) return "config";
  return "layer";
}
