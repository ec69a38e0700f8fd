/**
 * skopeo as the independent reference client: pushes layouts built by {@link buildImage} with
 * their digests preserved, so the registry holds exactly the bytes the test knows.
 */
import { link, mkdir, mkdtemp, readFile, rm, writeFile, copyFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import {
  AnnotationRefName,
  DigestMismatchError,
  InvalidArgumentError,
  NotFoundError,
  digestHex,
  isIndexMediaType,
  parseDigest,
  type Descriptor,
  type Digest,
} from "@ferry/core";
import { runTool, type RunToolOptions } from "./tools.ts";

/**
 * Run `skopeo --insecure-policy ARGS…` (no trust policy file needed) and return its stdout.
 * Throws a `ToolError` (code `Internal`) carrying stderr when skopeo fails.
 */
export async function skopeo(args: readonly string[], options: RunToolOptions = {}): Promise<string> {
  const { stdout } = await runTool("skopeo", ["--insecure-policy", ...args], options);
  return stdout;
}

export interface PushImageOptions {
  /** Copy every image of an index (`--all`). Default: true when the root is an index. */
  all?: boolean;
  /** Registry credentials (Basic, or exchanged for a token by skopeo). Default: anonymous. */
  creds?: { username: string; password: string };
  signal?: AbortSignal;
}

interface LayoutEntry {
  root: Descriptor;
}

async function readLayoutRoot(layoutDir: string, name: string): Promise<LayoutEntry> {
  const index = JSON.parse(await readFile(join(layoutDir, "index.json"), "utf8")) as { manifests?: Descriptor[] };
  const root = (index.manifests ?? []).find((m) => m.annotations?.[AnnotationRefName] === name);
  if (root === undefined) throw new NotFoundError(`no manifest named ${JSON.stringify(name)} in ${layoutDir}/index.json`);
  return { root: { ...root, digest: parseDigest(root.digest) } };
}

const isDockerType = (mt: string): boolean => mt.startsWith("application/vnd.docker.");

/**
 * Push `name` from the OCI layout at `layoutDir` to `registryHost` as `repoTag` with
 * `skopeo copy --preserve-digests --dest-tls-verify=false [--all]`, and return the digest the
 * registry stored, after checking it equals the layout's root descriptor (DigestMismatch if not).
 * Docker-typed layouts go through skopeo's `dir:` transport (its `oci:` transport rejects them).
 */
export async function pushImage(
  layoutDir: string,
  name: string,
  registryHost: string,
  repoTag: string,
  options: PushImageOptions = {},
): Promise<Digest> {
  const colon = repoTag.lastIndexOf(":");
  if (colon <= 0 || repoTag.slice(colon + 1).includes("/")) throw new InvalidArgumentError(`repoTag must be REPO:TAG, got ${repoTag}`);
  const dir = resolve(layoutDir);
  const { root } = await readLayoutRoot(dir, name);
  const all = options.all ?? isIndexMediaType(root.mediaType);
  const work = await mkdtemp(join(tmpdir(), "ferry-push-"));
  try {
    const source = isDockerType(root.mediaType) ? `dir:${await toDirTransport(dir, root, work)}` : `oci:${dir}:${name}`;
    const digestFile = join(work, "digest");
    const args = ["copy", "-q", "--preserve-digests", "--dest-tls-verify=false", "--digestfile", digestFile];
    if (all) args.push("--all");
    if (options.creds) args.push("--dest-creds", `${options.creds.username}:${options.creds.password}`);
    args.push(source, `docker://${registryHost}/${repoTag}`);
    await skopeo(args, options.signal ? { signal: options.signal } : {});
    const pushed = parseDigest((await readFile(digestFile, "utf8")).trim());
    if (pushed !== root.digest) {
      throw new DigestMismatchError(`skopeo pushed ${pushed}, layout root is ${root.digest}`, {
        details: { expected: root.digest, actual: pushed },
      });
    }
    return pushed;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * Lay the image out the way skopeo's `dir:` transport reads it: `manifest.json` = the root
 * document, `HEX.manifest.json` = each instance of a list, every other blob as `HEX`.
 * Blobs are hard-linked (copied across filesystems), never read into memory.
 */
async function toDirTransport(layoutDir: string, root: Descriptor, work: string): Promise<string> {
  const out = join(work, "dir");
  await mkdir(out);
  const blobPath = (d: Digest): string => join(layoutDir, "blobs", "sha256", digestHex(d));
  const place = async (d: Digest, to: string): Promise<void> => {
    try {
      await link(blobPath(d), to);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "EEXIST") return; // a layer listed twice
      if (code !== "EXDEV" && code !== "EPERM") throw e;
      await copyFile(blobPath(d), to);
    }
  };
  await writeFile(join(out, "version"), "Directory Transport Version: 1.1\n");
  const imageBlobs = async (manifestDigest: Digest): Promise<void> => {
    const m = JSON.parse(await readFile(blobPath(manifestDigest), "utf8")) as { config: Descriptor; layers: Descriptor[] };
    for (const d of [m.config, ...m.layers]) {
      const digest = parseDigest(d.digest);
      await place(digest, join(out, digestHex(digest)));
    }
  };
  await place(root.digest, join(out, "manifest.json"));
  if (isIndexMediaType(root.mediaType)) {
    const list = JSON.parse(await readFile(blobPath(root.digest), "utf8")) as { manifests: Descriptor[] };
    for (const m of list.manifests) {
      const d = parseDigest(m.digest);
      await place(d, join(out, `${digestHex(d)}.manifest.json`));
      await imageBlobs(d);
    }
  } else {
    await imageBlobs(root.digest);
  }
  return out;
}
