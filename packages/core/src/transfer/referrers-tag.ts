/**
 * The OCI 1.1 fallback for registries without the referrers API (distribution 2.8): after
 * pushing referrers, a client keeps an index tagged `<alg>-<hex>` of their subject's digest that
 * lists them, so that others can find them. Written only when the destination does not list the
 * pushed referrers already (a registry with the API does).
 */
import { ingestRef } from "../content-helpers/ingest-ref.ts";
import type { Descriptor } from "../descriptor.ts";
import { digestOf, type Digest } from "../digest.ts";
import { throwIfAborted } from "../errors.ts";
import type { ReferrersSource } from "../graph/referrers.ts";
import { MediaTypes } from "../media-types.ts";
import type { StatusReporter } from "../status/reporter.ts";
import type { Pusher } from "../transport.ts";
import { memorySource } from "./metered-source.ts";

export interface ReferrersTagOptions {
  /** The destination, able to list referrers (API or tag schema). */
  destination: ReferrersSource;
  /** Repository name as the destination resolver takes it. */
  repository: string;
  pusher: Pusher;
  /** Referrers copied in this operation, by subject digest. */
  bySubject: ReadonlyMap<Digest, readonly Descriptor[]>;
  reporter: StatusReporter;
  signal: AbortSignal;
}

/** The tag of a subject's referrers index in the tag schema: `sha256:abc…` → `sha256-abc…`. */
export function referrersTag(subject: Digest): string {
  return subject.replace(":", "-");
}

export async function writeReferrersTags(o: ReferrersTagOptions): Promise<void> {
  for (const [subject, copied] of o.bySubject) {
    throwIfAborted(o.signal);
    const listed = await o.destination.referrers(o.repository, subject, { signal: o.signal });
    const known = new Set(listed.map((d) => d.digest));
    const missing = copied.filter((d) => !known.has(d.digest));
    if (missing.length === 0) continue;
    const entry = (d: Descriptor): Descriptor => ({
      mediaType: d.mediaType,
      digest: d.digest,
      size: d.size,
      ...(d.artifactType ? { artifactType: d.artifactType } : {}),
      ...(d.annotations ? { annotations: d.annotations } : {}),
    });
    const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.OciIndex, manifests: [...listed, ...missing].map(entry) }));
    const desc: Descriptor = { mediaType: MediaTypes.OciIndex, digest: digestOf(bytes), size: bytes.byteLength };
    const blob = o.reporter.blob(desc, "upload", ingestRef(desc));
    blob.waiting();
    const outcome = await o.pusher.push(desc, memorySource(bytes, blob), { signal: o.signal, tag: referrersTag(subject) });
    if (outcome === "exists") blob.exists();
    else blob.done();
  }
}
