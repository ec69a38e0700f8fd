/**
 * The OCI 1.1 fallback for registries without the referrers API (distribution 2.8): after
 * pushing referrers, a client keeps an index tagged `<alg>-<hex>` of their subject's digest that
 * lists them, so that others can find them. Written only when the destination does not list the
 * pushed referrers already (a registry with the API does).
 *
 * The tag is read, merged and rewritten, and distribution 2.8 has no conditional writes, so two
 * clients adding referrers to one subject at once can overwrite each other (the spec's known
 * race). After writing, the tag is read again after a short random pause; when another writer's
 * index replaced ours without our entries, the merge is written again (up to
 * {@link TAG_ROUNDS} rounds). That closes the common interleaving (both read, both write); it
 * cannot close every one without a registry that refuses a stale write.
 */
import { ingestRef } from "../content-helpers/ingest-ref.ts";
import { sleep } from "../content-helpers/sleep.ts";
import type { Descriptor } from "../descriptor.ts";
import { digestOf, type Digest } from "../digest.ts";
import { UnavailableError, throwIfAborted } from "../errors.ts";
import type { ReferrersSource } from "../graph/referrers.ts";
import { MediaTypes } from "../media-types.ts";
import type { StatusReporter } from "../status/reporter.ts";
import type { Pusher } from "../transport.ts";
import { memorySource } from "./metered-source.ts";

/** Write-and-check rounds per subject. */
export const TAG_ROUNDS = 4;

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
  /** Pause before re-reading a written tag, in ms (default: 20–60, random). Tests set it. */
  settleMs?: () => number;
}

/** The tag of a subject's referrers index in the tag schema: `sha256:abc…` → `sha256-abc…`. */
export function referrersTag(subject: Digest): string {
  return subject.replace(":", "-");
}

export async function writeReferrersTags(o: ReferrersTagOptions): Promise<void> {
  const settle = o.settleMs ?? (() => 20 + Math.random() * 40);
  for (const [subject, copied] of o.bySubject) {
    let listed = await list(o, subject);
    for (let round = 1; ; round++) {
      const known = new Set(listed.map((d) => d.digest));
      const missing = copied.filter((d) => !known.has(d.digest));
      if (missing.length === 0) break;
      if (round > TAG_ROUNDS) {
        throw new UnavailableError(
          `the referrers tag ${referrersTag(subject)} kept being overwritten without ${missing.length} of our referrers (${TAG_ROUNDS} rounds)`,
          { details: { subject, missing: missing.map((d) => d.digest) } },
        );
      }
      await pushIndex(o, subject, [...listed, ...missing]);
      await sleep(settle(), o.signal);
      listed = await list(o, subject);
    }
  }
}

async function list(o: ReferrersTagOptions, subject: Digest): Promise<Descriptor[]> {
  throwIfAborted(o.signal);
  return o.destination.referrers(o.repository, subject, { signal: o.signal });
}

async function pushIndex(o: ReferrersTagOptions, subject: Digest, manifests: Descriptor[]): Promise<void> {
  const entry = (d: Descriptor): Descriptor => ({
    mediaType: d.mediaType,
    digest: d.digest,
    size: d.size,
    ...(d.artifactType ? { artifactType: d.artifactType } : {}),
    ...(d.annotations ? { annotations: d.annotations } : {}),
  });
  const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.OciIndex, manifests: manifests.map(entry) }));
  const desc: Descriptor = { mediaType: MediaTypes.OciIndex, digest: digestOf(bytes), size: bytes.byteLength };
  const blob = o.reporter.blob(desc, "upload", ingestRef(desc));
  blob.waiting();
  const outcome = await o.pusher.push(desc, memorySource(bytes, blob), { signal: o.signal, tag: referrersTag(subject) });
  if (outcome === "exists") blob.exists();
  else blob.done();
}
