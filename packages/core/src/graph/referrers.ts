import type { Descriptor } from "../descriptor.ts";
import type { Digest } from "../digest.ts";

/**
 * A resolver that can list the manifests referring to a digest (OCI 1.1 referrers). The
 * registry resolver of `@ferry/fetcher` and {@link LocalResolver} both are.
 */
export interface ReferrersSource {
  referrers(name: string, digest: Digest, options?: { signal?: AbortSignal; artifactType?: string }): Promise<Descriptor[]>;
}

export function canListReferrers(x: unknown): x is ReferrersSource {
  return typeof x === "object" && x !== null && typeof (x as Partial<ReferrersSource>).referrers === "function";
}
