/** Blob uploads: POST (session, monolithic, mount), PATCH, GET status, PUT, DELETE. */
import { randomUUID } from "node:crypto";
import { digestAlgorithm, digestStream, hasCode, isAlreadyExists, isNotFound, type Digest } from "@ferry/core";
import { discardBody, hasBody, requestBody, sendEmpty, type RequestContext } from "./http.ts";
import { isValidName } from "./names.ts";
import { OciHttpError } from "./oci-errors.ts";
import { checkDigest } from "./params.ts";
import type { Services } from "./services.ts";
import { rangeError, uploadRange, uploadRef } from "./uploads.ts";

function sessionHeaders(repo: string, uuid: string, offset: number): Record<string, string> {
  return {
    Location: `/v2/${repo}/blobs/uploads/${uuid}`,
    Range: uploadRange(offset),
    "Docker-Upload-UUID": uuid,
  };
}

function blobCreated(ctx: RequestContext, repo: string, digest: Digest): void {
  sendEmpty(ctx, 201, { Location: `/v2/${repo}/blobs/${digest}`, "Docker-Content-Digest": digest });
}

export async function startUpload(s: Services, ctx: RequestContext, repo: string): Promise<void> {
  const q = ctx.url.searchParams;
  const mount = q.get("mount");
  if (mount !== null) {
    const digest = checkDigest(mount);
    const from = q.get("from");
    if (from !== null && isValidName(from) && (await s.storage.blobLink(from, digest)) !== undefined) {
      const info = await s.store.info(digest).catch((err: unknown) => {
        if (isNotFound(err)) return undefined;
        throw err;
      });
      if (info !== undefined) {
        discardBody(ctx);
        await s.storage.linkBlob(repo, digest, info.size);
        blobCreated(ctx, repo, digest);
        return;
      }
    }
    // Not mountable: fall through to a fresh session, as the spec asks.
  }
  const digestParam = q.get("digest");
  if (digestParam !== null && mount === null && (hasBody(ctx) || ctx.req.headers["content-length"] === "0")) {
    await monolithic(s, ctx, repo, checkDigest(digestParam));
    return;
  }
  discardBody(ctx);
  const session = await s.uploads.create(repo, ctx.signal);
  sendEmpty(ctx, 202, sessionHeaders(repo, session.uuid, 0));
}

/** `POST …/uploads/?digest=` with the whole blob as the body: one request, no session. */
async function monolithic(s: Services, ctx: RequestContext, repo: string, digest: Digest): Promise<void> {
  const length = ctx.req.headers["content-length"];
  const total = length === undefined ? undefined : Number(length);
  const ref = uploadRef(randomUUID());
  let writer;
  try {
    writer = await s.store.writer({ ref, expected: digest, total, signal: ctx.signal });
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
    // The bytes are in the store already (pushed to some repository), but linking them here
    // needs proof that the client has them: otherwise knowing a digest would be enough to read
    // a blob of a repository one cannot pull from. Hash the body; keep nothing.
    const size = (await s.store.info(digest)).size;
    const got = await digestStream(requestBody(ctx) as AsyncIterable<Uint8Array>, digestAlgorithm(digest));
    if (got.digest !== digest || got.size !== size) {
      throw new OciHttpError("DIGEST_INVALID", "uploaded content does not match the digest", { detail: { digest } });
    }
    await s.storage.linkBlob(repo, digest, size);
    blobCreated(ctx, repo, digest);
    return;
  }
  let size = 0;
  try {
    for await (const chunk of requestBody(ctx) as AsyncIterable<Buffer>) {
      await writer.write(chunk);
      size += chunk.length;
    }
    if (total !== undefined && size !== total) {
      throw new OciHttpError("SIZE_INVALID", "body shorter than Content-Length", { detail: { size, total } });
    }
    try {
      await writer.commit(size, digest);
    } catch (err) {
      if (hasCode(err, "DigestMismatch") || hasCode(err, "SizeMismatch")) {
        throw new OciHttpError("DIGEST_INVALID", "uploaded content does not match the digest", { detail: { digest }, cause: err });
      }
      if (!isAlreadyExists(err)) throw err;
    }
  } finally {
    // Success or not, a monolithic upload leaves no ingest behind.
    await writer.close().catch(() => undefined);
    await s.store.abort(ref).catch(() => undefined);
  }
  await s.storage.linkBlob(repo, digest, size);
  blobCreated(ctx, repo, digest);
}

/** `Content-Range: <start>-<end>` of a chunk (the spec's form, without `bytes `). */
function chunkRange(ctx: RequestContext): { start: number; end: number } | undefined {
  const h = ctx.req.headers["content-range"];
  if (h === undefined) return undefined;
  const m = /^(?:bytes\s+)?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(h.trim());
  if (m === null) throw new OciHttpError("RANGE_INVALID", "malformed Content-Range", { detail: { contentRange: h } });
  const start = Number(m[1]);
  const end = Number(m[2]);
  if (end < start) throw new OciHttpError("RANGE_INVALID", "Content-Range end before start", { detail: { contentRange: h } });
  return { start, end };
}

export async function patchUpload(s: Services, ctx: RequestContext, repo: string, uuid: string): Promise<void> {
  const session = await s.uploads.get(uuid, repo);
  const range = chunkRange(ctx);
  if (range !== undefined) {
    const len = ctx.req.headers["content-length"];
    if (len !== undefined && Number(len) !== range.end - range.start + 1) {
      discardBody(ctx);
      throw new OciHttpError("SIZE_INVALID", "Content-Length does not match Content-Range", {
        detail: { contentLength: len, contentRange: ctx.req.headers["content-range"] },
      });
    }
  }
  const body = requestBody(ctx);
  try {
    const offset = await s.uploads.append(session, body, range?.start, ctx.signal);
    if (range !== undefined && offset !== range.end + 1) {
      throw rangeError(offset, `chunk ended at ${offset}, Content-Range said ${range.end + 1}`);
    }
    sendEmpty(ctx, 202, sessionHeaders(repo, uuid, offset));
  } catch (err) {
    throw withSession(err, repo, uuid);
  }
}

/** A 416 tells the client where the session is and how to reach it, as a status GET would. */
function withSession(err: unknown, repo: string, uuid: string): unknown {
  if (err instanceof OciHttpError && err.ociCode === "RANGE_INVALID") {
    err.headers.Location = `/v2/${repo}/blobs/uploads/${uuid}`;
    err.headers["Docker-Upload-UUID"] = uuid;
  }
  return err;
}

export async function uploadStatus(s: Services, ctx: RequestContext, repo: string, uuid: string): Promise<void> {
  await s.uploads.get(uuid, repo);
  const offset = await s.uploads.offset(uuid);
  sendEmpty(ctx, 204, sessionHeaders(repo, uuid, offset));
}

export async function finishUpload(s: Services, ctx: RequestContext, repo: string, uuid: string): Promise<void> {
  const session = await s.uploads.get(uuid, repo);
  const digestParam = ctx.url.searchParams.get("digest");
  if (digestParam === null) {
    discardBody(ctx);
    throw new OciHttpError("DIGEST_INVALID", "the digest query parameter is required", { detail: { digest: null } });
  }
  const digest = checkDigest(digestParam);
  if (hasBody(ctx)) {
    const range = chunkRange(ctx);
    await s.uploads.append(session, requestBody(ctx), range?.start, ctx.signal).catch((err: unknown) => {
      throw withSession(err, repo, uuid);
    });
  } else {
    discardBody(ctx);
  }
  const size = await s.uploads.finish(session, digest, ctx.signal);
  await s.storage.linkBlob(repo, digest, size);
  blobCreated(ctx, repo, digest);
}

export async function cancelUpload(s: Services, ctx: RequestContext, repo: string, uuid: string): Promise<void> {
  const session = await s.uploads.get(uuid, repo);
  discardBody(ctx);
  await s.uploads.cancel(session, ctx.signal);
  sendEmpty(ctx, 204);
}
