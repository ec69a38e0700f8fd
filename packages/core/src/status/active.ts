import type { IngestManager, Status, StatusFilter } from "../content.ts";
import { isDigest, type Digest } from "../digest.ts";

/** An in-flight (uncommitted) ingest of a store, with the digest its ref names when it has one. */
export interface ActiveIngest extends Status {
  /** The blob's digest, when the ref is a ferry ingest key (`layer-sha256:…`). */
  digest?: Digest;
  /** The key's prefix (`layer`, `config`, `manifest`, `index`), when it has one. */
  kind?: string;
}

/**
 * The ingests currently open or left partial in `store` (what an interrupted pull would resume),
 * like containerd's `ctr content active`.
 */
export async function active(store: Pick<IngestManager, "listStatuses">, filter?: StatusFilter): Promise<ActiveIngest[]> {
  const statuses = await store.listStatuses(filter);
  return statuses.map((s) => {
    const dash = s.ref.indexOf("-");
    const digest = dash > 0 ? s.ref.slice(dash + 1) : "";
    return isDigest(digest) ? { ...s, digest, kind: s.ref.slice(0, dash) } : { ...s };
  });
}
