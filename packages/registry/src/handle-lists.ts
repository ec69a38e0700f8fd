/** Tags list, catalog and referrers: the read-only listings. */
import { MediaTypes } from "@ferry/core";
import { sendJson, type RequestContext } from "./http.ts";
import { OciHttpError } from "./oci-errors.ts";
import { checkDigest, pageSize } from "./params.ts";
import type { Services } from "./services.ts";

/** Apply `n`/`last` to a sorted list; returns the page and the `Link` header when more remain. */
function paginate(ctx: RequestContext, all: string[], path: string): { page: string[]; headers: Record<string, string> } {
  const n = pageSize(ctx.url.searchParams.get("n"));
  const last = ctx.url.searchParams.get("last");
  const rest = last === null ? all : all.filter((x) => x > last);
  if (n === undefined) return { page: rest, headers: {} };
  const page = rest.slice(0, n);
  const headers: Record<string, string> = {};
  const tail = page[page.length - 1];
  if (rest.length > n && tail !== undefined) {
    headers.Link = `<${path}?n=${n}&last=${encodeURIComponent(tail)}>; rel="next"`;
  }
  return { page, headers };
}

export async function listTags(s: Services, ctx: RequestContext, repo: string): Promise<void> {
  if (!(await s.storage.hasRepository(repo))) {
    throw new OciHttpError("NAME_UNKNOWN", "repository name not known to registry", { detail: { name: repo } });
  }
  const { page, headers } = paginate(ctx, await s.storage.listTags(repo), `/v2/${repo}/tags/list`);
  await sendJson(ctx, 200, { name: repo, tags: page }, headers);
}

export async function catalog(s: Services, ctx: RequestContext): Promise<void> {
  const { page, headers } = paginate(ctx, await s.storage.listRepositories(), "/v2/_catalog");
  await sendJson(ctx, 200, { repositories: page }, headers);
}

export async function referrers(s: Services, ctx: RequestContext, repo: string, ref: string): Promise<void> {
  const subject = checkDigest(ref);
  const artifactType = ctx.url.searchParams.get("artifactType");
  let manifests = await s.storage.listReferrers(repo, subject);
  const headers: Record<string, string> = { "Content-Type": MediaTypes.OciIndex };
  if (artifactType !== null) {
    manifests = manifests.filter((d) => d.artifactType === artifactType);
    headers["OCI-Filters-Applied"] = "artifactType";
  }
  await sendJson(ctx, 200, { schemaVersion: 2, mediaType: MediaTypes.OciIndex, manifests }, headers);
}
