/** `GET`/`HEAD`/`DELETE /v2/<name>/blobs/<digest>`. */
import { isNotFound, type Digest, type ReaderAt } from "@ferry/core";
import { sendEmpty, sendStream, type RequestContext } from "./http.ts";
import { OciHttpError } from "./oci-errors.ts";
import { checkDigest } from "./params.ts";
import { parseRange } from "./range.ts";
import type { Services } from "./services.ts";

async function openLinked(s: Services, repo: string, digest: Digest, signal: AbortSignal): Promise<ReaderAt> {
  // A blob is visible only in repositories it was pushed or mounted into (manifests count too).
  const linked = (await s.storage.blobLink(repo, digest)) ?? (await s.storage.manifestLink(repo, digest));
  if (linked === undefined) throw blobUnknown(digest);
  try {
    return await s.store.readerAt({ digest }, { signal });
  } catch (err) {
    if (isNotFound(err)) throw blobUnknown(digest);
    throw err;
  }
}

export function blobUnknown(digest: string): OciHttpError {
  return new OciHttpError("BLOB_UNKNOWN", "blob unknown to registry", { detail: { digest } });
}

export async function getBlob(s: Services, ctx: RequestContext, repo: string, ref: string): Promise<void> {
  const digest = checkDigest(ref);
  const reader = await openLinked(s, repo, digest, ctx.signal);
  try {
    const size = reader.size;
    const base = {
      "Content-Type": "application/octet-stream",
      "Docker-Content-Digest": digest,
      "Accept-Ranges": "bytes",
      ETag: `"${digest}"`,
    };
    // Range applies to GET only (RFC 9110 §14.2): a HEAD describes the whole blob.
    const rangeHeader = ctx.faults?.ignoreRange === true || ctx.method === "HEAD" ? undefined : ctx.req.headers.range;
    const range = parseRange(rangeHeader, size);
    if (range.kind === "unsatisfiable") {
      throw new OciHttpError("RANGE_INVALID", "requested range not satisfiable", {
        headers: { "Content-Range": `bytes */${size}` },
        detail: { size },
      });
    }
    if (ctx.method === "HEAD") {
      sendEmptyHead(ctx, { ...base, "Content-Length": String(size) });
      return;
    }
    if (range.kind === "partial") {
      const headers = {
        ...base,
        "Content-Length": String(range.end - range.start + 1),
        "Content-Range": `bytes ${range.start}-${range.end}/${size}`,
      };
      await sendStream(ctx, 206, headers, reader.createReadStream({ offset: range.start, end: range.end + 1, signal: ctx.signal }));
      return;
    }
    await sendStream(ctx, 200, { ...base, "Content-Length": String(size) }, reader.createReadStream({ signal: ctx.signal }));
  } finally {
    await reader.close();
  }
}

/** HEAD answers carry the entity's Content-Length but no body. */
function sendEmptyHead(ctx: RequestContext, headers: Record<string, string>): void {
  ctx.res.writeHead(200, headers);
  ctx.res.end();
}

export async function deleteBlob(s: Services, ctx: RequestContext, repo: string, ref: string): Promise<void> {
  const digest = checkDigest(ref);
  // Only the link goes: other repositories may share the blob (no garbage collection here).
  if (!(await s.storage.unlinkBlob(repo, digest))) throw blobUnknown(digest);
  sendEmpty(ctx, 202, { "Docker-Content-Digest": digest });
}
