/**
 * The last steps every commit shares, whichever writer made the file: link the finished file
 * into `blobs/` (link fails when the target exists, so of two commits of one digest exactly one
 * wins) and bring the blob's metadata file in line with the commit's labels.
 */
import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { AlreadyExistsError, type Digest } from "@ferry/core";
import type { BlobMetaStore } from "./blob-meta.ts";
import { linkPath } from "./fd-calls.ts";
import { isEEXIST, isENOENT } from "./fs-util.ts";

/** Link `source` to `target`; `AlreadyExists` when the digest is already stored. */
export async function linkBlob(source: string, target: string, digest: Digest, ref: string): Promise<void> {
  try {
    try {
      await linkPath(source, target);
    } catch (err) {
      // blobs/<alg>/ exists almost always (ready() creates sha256/): make it only when missing.
      if (!isENOENT(err)) throw err;
      await mkdir(dirname(target), { recursive: true });
      await linkPath(source, target);
    }
  } catch (err) {
    if (isEEXIST(err)) throw new AlreadyExistsError(`content ${digest} already exists`, { details: { digest, ref } });
    throw err;
  }
}

/**
 * A blob without labels needs no metadata file (its mtime is its createdAt/updatedAt, see
 * blob-meta.ts), but one left by an earlier life of this digest (deleted, now committed again)
 * would carry stale labels and times, so it is removed; a labelled commit rewrites it.
 */
export async function recordCommitMeta(meta: BlobMetaStore, digest: Digest, labels: Record<string, string>, now: Date): Promise<void> {
  if (Object.keys(labels).length === 0) await meta.remove(digest);
  else await meta.write(digest, { createdAt: now.toISOString(), updatedAt: now.toISOString(), labels });
}
