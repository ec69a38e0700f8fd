/**
 * Build a random image and push it in one call: what most integration tests want.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Digest } from "@ferry/core";
import { buildImage, type BuildImageOptions, type BuiltLayout } from "./build-image.ts";
import { pushImage, type PushImageOptions } from "./skopeo.ts";

export interface MakeImageOptions extends Omit<BuildImageOptions, "dir" | "name"> {
  /** Keep the built layout here (must be empty or absent). Default: a temp dir, deleted after the push. */
  layoutDir?: string;
  /** Registry credentials for the push. Default: anonymous. */
  creds?: PushImageOptions["creds"];
}

export interface MadeImage extends BuiltLayout {
  /** `HOST/REPO:TAG` as pushed. */
  reference: string;
  /** The pushed root digest (equals `root.digest`). */
  digest: Digest;
  /** Whether `dir` still exists (true only when `layoutDir` was given). */
  kept: boolean;
}

/** Build a random image (see {@link buildImage}) and push it to `registryHost` as `repoTag`. */
export async function makeImage(registryHost: string, repoTag: string, options: MakeImageOptions): Promise<MadeImage> {
  const { layoutDir, creds, ...build } = options;
  const temp = layoutDir === undefined ? await mkdtemp(join(tmpdir(), "ferry-image-")) : undefined;
  const dir = layoutDir ?? join(temp!, "layout");
  const tag = repoTag.slice(repoTag.lastIndexOf(":") + 1);
  try {
    const built = await buildImage({ ...build, dir, name: tag });
    const push: PushImageOptions = {};
    if (creds) push.creds = creds;
    if (build.signal) push.signal = build.signal;
    const digest = await pushImage(dir, tag, registryHost, repoTag, push);
    return { ...built, reference: `${registryHost}/${repoTag}`, digest, kept: temp === undefined };
  } finally {
    if (temp !== undefined) await rm(temp, { recursive: true, force: true });
  }
}
