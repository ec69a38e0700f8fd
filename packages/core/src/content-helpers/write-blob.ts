import type { Descriptor } from "../descriptor.ts";
import type { IngestManager, Ingester } from "../content.ts";
import { isAlreadyExists } from "../errors.ts";
import type { BlobSource } from "./blob-source.ts";
import { type CopyBlobOutcome, copyBlob } from "./copy-blob.ts";
import { openWriter } from "./open-writer.ts";

export interface WriteBlobOptions {
  signal?: AbortSignal;
  /** Labels set on the blob at commit. Default: none. */
  labels?: Record<string, string>;
  /** Called after every chunk with the ingest offset. */
  onProgress?(offset: number): void;
}

export type WriteBlobOutcome = CopyBlobOutcome;

/**
 * Ingest `desc` from `source` under `ref` (usually {@link ingestRef}`(desc)`) and commit it with
 * its size and digest. Waits while another writer holds the ref (see {@link openWriter}); a blob
 * that already exists, at open or at commit, is a success (`"exists"`). A partially written
 * ingest is resumed from its offset as far as the source allows (see {@link copyBlob}).
 */
export async function writeBlob(
  ingester: Ingester,
  ref: string,
  source: BlobSource,
  desc: Pick<Descriptor, "digest" | "size">,
  options: WriteBlobOptions = {},
): Promise<WriteBlobOutcome> {
  let writer;
  try {
    writer = await openWriter(ingester, { ref, total: desc.size, expected: desc.digest, signal: options.signal });
  } catch (err) {
    if (isAlreadyExists(err)) return "exists";
    throw err;
  }
  const outcome = await copyBlob(writer, source, {
    size: desc.size,
    expected: desc.digest,
    signal: options.signal,
    labels: options.labels,
    onProgress: options.onProgress,
  });
  if (outcome === "exists" && hasAbort(ingester)) {
    // A store keeps the ingest after an AlreadyExists commit; drop it (best effort, another
    // writer may already have taken the ref).
    await ingester.abort(ref).catch(() => undefined);
  }
  return outcome;
}

function hasAbort(x: Ingester): x is Ingester & Pick<IngestManager, "abort"> {
  return typeof (x as Partial<IngestManager>).abort === "function";
}
