/** `GET`/`HEAD`/`PUT`/`DELETE /v2/<name>/manifests/<reference>`. */
import {
  digestAlgorithm,
  digestOf,
  hasCode,
  isAlreadyExists,
  isNonDistributable,
  isNotFound,
  MaxManifestBytes,
  parseManifest,
  type Descriptor,
  type Digest,
} from "@ferry/core";
import { randomUUID } from "node:crypto";
import { readCapped, requestBody, sendBuffer, sendEmpty, type RequestContext } from "./http.ts";
import { OciHttpError } from "./oci-errors.ts";
import { checkReference } from "./params.ts";
import type { Services } from "./services.ts";
import type { ManifestLink } from "./storage.ts";

function manifestUnknown(ref: string): OciHttpError {
  return new OciHttpError("MANIFEST_UNKNOWN", "manifest unknown", { detail: { reference: ref } });
}

/** The media types an `Accept` header allows; undefined means anything. */
function accepted(header: string | undefined): Set<string> | undefined {
  if (header === undefined || header.trim() === "") return undefined;
  const types = header
    .split(",")
    .map((t) => t.split(";")[0]?.trim().toLowerCase() ?? "")
    .filter((t) => t !== "");
  if (types.length === 0 || types.includes("*/*") || types.includes("application/*")) return undefined;
  return new Set(types);
}

async function resolveLink(s: Services, repo: string, ref: string): Promise<{ link: ManifestLink; byTag: boolean }> {
  const r = checkReference(ref);
  if ("tag" in r) {
    const desc = await s.storage.getTag(repo, r.tag);
    if (desc === undefined) throw manifestUnknown(ref);
    const link = (await s.storage.manifestLink(repo, desc.digest)) ?? {
      digest: desc.digest,
      size: desc.size,
      mediaType: desc.mediaType,
    };
    return { link, byTag: true };
  }
  const link = await s.storage.manifestLink(repo, r.digest);
  if (link === undefined) throw manifestUnknown(ref);
  return { link, byTag: false };
}

export async function getManifest(s: Services, ctx: RequestContext, repo: string, ref: string): Promise<void> {
  const { link, byTag } = await resolveLink(s, repo, ref);
  // Negotiation applies to tags only: a digest names exactly one document.
  const accept = accepted(ctx.req.headers.accept);
  if (byTag && accept !== undefined && !accept.has(link.mediaType)) {
    throw new OciHttpError("MANIFEST_UNKNOWN", `manifest is ${link.mediaType}, which the Accept header does not allow`, {
      detail: { reference: ref, mediaType: link.mediaType },
    });
  }
  let body: Uint8Array;
  try {
    const reader = await s.store.readerAt({ digest: link.digest }, { signal: ctx.signal });
    try {
      body = await reader.read(0, reader.size);
    } finally {
      await reader.close();
    }
  } catch (err) {
    if (isNotFound(err)) throw manifestUnknown(ref);
    throw err;
  }
  await sendBuffer(
    ctx,
    200,
    { "Content-Type": link.mediaType, "Docker-Content-Digest": link.digest, ETag: `"${link.digest}"` },
    body,
  );
}

export async function putManifest(s: Services, ctx: RequestContext, repo: string, ref: string): Promise<void> {
  const r = checkReference(ref);
  const body = await readCapped(requestBody(ctx), MaxManifestBytes, "manifest", ctx.req.headers["content-length"]);
  const contentType = ctx.req.headers["content-type"]?.split(";")[0]?.trim();
  let parsed;
  try {
    parsed = parseManifest(body, { mediaType: contentType });
  } catch (err) {
    if (hasCode(err, "InvalidManifest")) {
      throw new OciHttpError("MANIFEST_INVALID", err.message, { detail: err.details, cause: err });
    }
    throw err;
  }
  const digest = "digest" in r ? digestOf(body, digestAlgorithm(r.digest)) : digestOf(body);
  if ("digest" in r && digest !== r.digest) {
    throw new OciHttpError("DIGEST_INVALID", "manifest content does not match the digest in the URL", {
      detail: { expected: r.digest, actual: digest },
    });
  }

  // Every referenced blob must already be in this repository.
  const missing: Digest[] = [];
  if (parsed.kind === "manifest") {
    const m = parsed.manifest;
    const refs: Descriptor[] = [m.config, ...m.layers];
    for (const d of refs) {
      if (isNonDistributable(d.mediaType) && (d.urls?.length ?? 0) > 0) continue;
      if ((await s.storage.blobLink(repo, d.digest)) === undefined) missing.push(d.digest);
    }
  } else if (!s.sparseIndexes) {
    for (const d of parsed.index.manifests) {
      if ((await s.storage.manifestLink(repo, d.digest)) === undefined) missing.push(d.digest);
    }
  }
  if (missing.length > 0) {
    throw new OciHttpError("MANIFEST_BLOB_UNKNOWN", "manifest references content unknown to this repository", {
      detail: { digests: missing },
    });
  }

  await storeBytes(s, body, digest);
  const doc = parsed.kind === "manifest" ? parsed.manifest : parsed.index;
  const subject = doc.subject;
  const link: ManifestLink = { digest, size: body.length, mediaType: parsed.mediaType };
  if (subject !== undefined) link.subject = subject.digest;
  await s.storage.linkManifest(repo, link);
  if (subject !== undefined) {
    const desc: Descriptor = { mediaType: parsed.mediaType, digest, size: body.length };
    const artifactType =
      doc.artifactType ?? (parsed.kind === "manifest" ? parsed.manifest.config.mediaType : undefined);
    if (artifactType !== undefined) desc.artifactType = artifactType;
    if (doc.annotations !== undefined) desc.annotations = doc.annotations;
    await s.storage.addReferrer(repo, subject.digest, desc);
  }
  if ("tag" in r) await s.storage.setTag(repo, r.tag, { mediaType: parsed.mediaType, digest, size: body.length });

  const headers: Record<string, string> = {
    Location: `/v2/${repo}/manifests/${digest}`,
    "Docker-Content-Digest": digest,
  };
  if (subject !== undefined) headers["OCI-Subject"] = subject.digest;
  sendEmpty(ctx, 201, headers);
}

async function storeBytes(s: Services, body: Buffer, digest: Digest): Promise<void> {
  // A private ref: two pushes of one manifest must not lock each other out.
  const ref = `manifest-put-${randomUUID()}`;
  let writer;
  try {
    writer = await s.store.writer({ ref, expected: digest, total: body.length });
  } catch (err) {
    if (isAlreadyExists(err)) return;
    throw err;
  }
  try {
    await writer.write(body);
    await writer.commit(body.length, digest);
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
  } finally {
    await writer.close().catch(() => undefined);
    await s.store.abort(ref).catch(() => undefined);
  }
}

export async function deleteManifest(s: Services, ctx: RequestContext, repo: string, ref: string): Promise<void> {
  const r = checkReference(ref);
  if ("tag" in r) {
    // OCI distribution 1.1 allows deleting a tag; the manifest stays.
    if (!(await s.storage.deleteTag(repo, r.tag))) throw manifestUnknown(ref);
    sendEmpty(ctx, 202);
    return;
  }
  const link = await s.storage.manifestLink(repo, r.digest);
  if (link === undefined) throw manifestUnknown(ref);
  // The link goes last: a crash half-way leaves the manifest there, and the DELETE can be sent
  // again. Link first, the tags left behind served a manifest no DELETE could reach any more.
  for (const tag of await s.storage.listTags(repo)) {
    const d = await s.storage.getTag(repo, tag);
    if (d?.digest === r.digest) await s.storage.deleteTag(repo, tag);
  }
  if (link.subject !== undefined) await s.storage.removeReferrer(repo, link.subject, r.digest);
  await s.storage.unlinkManifest(repo, r.digest);
  sendEmpty(ctx, 202);
}
