/**
 * Repository metadata as small JSON files, one per fact, each written to a temporary name and
 * renamed into place. A rename is atomic, and no file is ever read-modified-written, so several
 * server processes can share one directory without locks (the last writer of a tag wins).
 *
 * Layout under `root`:
 *   repositories/<name>/_blobs/<alg>/<hex>.json          {size}
 *   repositories/<name>/_manifests/<alg>/<hex>.json      ManifestLink
 *   repositories/<name>/_tags/<tag>.json                 Descriptor
 *   repositories/<name>/_referrers/<alg>/<hex>/<alg>-<hex>.json   Descriptor
 *   uploads/<uuid>.json                                  UploadSession
 * Name components never start with `_` (spec grammar), so `_…` directories cannot collide.
 */
import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { InvalidArgumentError, splitDigest, type Descriptor, type Digest } from "@ferry/core";
import { isValidName, isValidTag } from "./names.ts";
import { compareNames, type ManifestLink, type RegistryStorage, type UploadSession } from "./storage.ts";

const UUID_RE = /^[0-9a-f-]{8,64}$/;

export class FsRegistryStorage implements RegistryStorage {
  readonly root: string;

  constructor(root: string) {
    this.root = root;
  }

  #repoDir(repo: string): string {
    // Names are validated here too, so a hostile name can never leave the root.
    if (!isValidName(repo)) throw new InvalidArgumentError(`invalid repository name ${JSON.stringify(repo)}`);
    return join(this.root, "repositories", ...repo.split("/"));
  }

  #digestPath(dir: string, digest: Digest): string {
    const { algorithm, encoded } = splitDigest(digest);
    return join(dir, algorithm, `${encoded}.json`);
  }

  #tagPath(repo: string, tag: string): string {
    if (!isValidTag(tag)) throw new InvalidArgumentError(`invalid tag ${JSON.stringify(tag)}`);
    return join(this.#repoDir(repo), "_tags", `${tag}.json`);
  }

  #uploadPath(uuid: string): string {
    if (!UUID_RE.test(uuid)) throw new InvalidArgumentError(`invalid upload id ${JSON.stringify(uuid)}`);
    return join(this.root, "uploads", `${uuid}.json`);
  }

  async listRepositories(): Promise<string[]> {
    const out: string[] = [];
    const visit = async (dir: string, prefix: string[]): Promise<void> => {
      const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
      let isRepo = false;
      for (const e of entries) {
        if (!e.isDirectory()) continue;
        if (e.name.startsWith("_")) {
          if (!isRepo && (await hasAnyFile(join(dir, e.name)))) isRepo = true;
        } else {
          await visit(join(dir, e.name), [...prefix, e.name]);
        }
      }
      if (isRepo && prefix.length > 0) out.push(prefix.join("/"));
    };
    await visit(join(this.root, "repositories"), []);
    return out.sort(compareNames);
  }

  async hasRepository(repo: string): Promise<boolean> {
    const dir = this.#repoDir(repo);
    for (const sub of ["_blobs", "_manifests", "_tags"]) {
      if (await hasAnyFile(join(dir, sub))) return true;
    }
    return false;
  }

  async linkBlob(repo: string, digest: Digest, size: number): Promise<void> {
    await writeJson(this.#digestPath(join(this.#repoDir(repo), "_blobs"), digest), { size });
  }

  async blobLink(repo: string, digest: Digest): Promise<{ size: number } | undefined> {
    const v = await readJson<{ size: number }>(this.#digestPath(join(this.#repoDir(repo), "_blobs"), digest));
    return v === undefined ? undefined : { size: v.size };
  }

  async unlinkBlob(repo: string, digest: Digest): Promise<boolean> {
    return removeFile(this.#digestPath(join(this.#repoDir(repo), "_blobs"), digest));
  }

  async linkManifest(repo: string, link: ManifestLink): Promise<void> {
    await writeJson(this.#digestPath(join(this.#repoDir(repo), "_manifests"), link.digest), link);
  }

  async manifestLink(repo: string, digest: Digest): Promise<ManifestLink | undefined> {
    return readJson<ManifestLink>(this.#digestPath(join(this.#repoDir(repo), "_manifests"), digest));
  }

  async unlinkManifest(repo: string, digest: Digest): Promise<boolean> {
    return removeFile(this.#digestPath(join(this.#repoDir(repo), "_manifests"), digest));
  }

  async setTag(repo: string, tag: string, desc: Descriptor): Promise<void> {
    await writeJson(this.#tagPath(repo, tag), desc);
  }

  async getTag(repo: string, tag: string): Promise<Descriptor | undefined> {
    return readJson<Descriptor>(this.#tagPath(repo, tag));
  }

  async deleteTag(repo: string, tag: string): Promise<boolean> {
    return removeFile(this.#tagPath(repo, tag));
  }

  async listTags(repo: string): Promise<string[]> {
    const names = await readdir(join(this.#repoDir(repo), "_tags")).catch(() => [] as string[]);
    return names
      .filter((n) => n.endsWith(".json"))
      .map((n) => n.slice(0, -5))
      .filter(isValidTag)
      .sort(compareNames);
  }

  #referrerDir(repo: string, subject: Digest): string {
    const { algorithm, encoded } = splitDigest(subject);
    return join(this.#repoDir(repo), "_referrers", algorithm, encoded);
  }

  async addReferrer(repo: string, subject: Digest, desc: Descriptor): Promise<void> {
    const { algorithm, encoded } = splitDigest(desc.digest);
    await writeJson(join(this.#referrerDir(repo, subject), `${algorithm}-${encoded}.json`), desc);
  }

  async removeReferrer(repo: string, subject: Digest, digest: Digest): Promise<void> {
    const { algorithm, encoded } = splitDigest(digest);
    await removeFile(join(this.#referrerDir(repo, subject), `${algorithm}-${encoded}.json`));
  }

  async listReferrers(repo: string, subject: Digest): Promise<Descriptor[]> {
    const dir = this.#referrerDir(repo, subject);
    const names = await readdir(dir).catch(() => [] as string[]);
    const out: Descriptor[] = [];
    for (const n of names.filter((x) => x.endsWith(".json")).sort()) {
      const d = await readJson<Descriptor>(join(dir, n));
      if (d !== undefined) out.push(d);
    }
    return out;
  }

  async putUpload(session: UploadSession): Promise<void> {
    await writeJson(this.#uploadPath(session.uuid), session);
  }

  async getUpload(uuid: string): Promise<UploadSession | undefined> {
    if (!UUID_RE.test(uuid)) return undefined;
    return readJson<UploadSession>(this.#uploadPath(uuid));
  }

  async deleteUpload(uuid: string): Promise<void> {
    if (!UUID_RE.test(uuid)) return;
    await removeFile(this.#uploadPath(uuid));
  }

  async listUploads(): Promise<UploadSession[]> {
    const dir = join(this.root, "uploads");
    const names = await readdir(dir).catch(() => [] as string[]);
    const out: UploadSession[] = [];
    for (const n of names) {
      if (!n.endsWith(".json")) continue;
      const s = await readJson<UploadSession>(join(dir, n));
      if (s !== undefined) out.push(s);
    }
    return out;
  }
}

async function writeJson(file: string, value: unknown): Promise<void> {
  const dir = join(file, "..");
  await mkdir(dir, { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(6).toString("hex")}`;
  try {
    await writeFile(tmp, JSON.stringify(value));
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(file, "utf8")) as T;
  } catch (err) {
    // A missing file is "absent"; a torn file cannot happen (rename), so anything else is real.
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

async function removeFile(file: string): Promise<boolean> {
  try {
    await unlink(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
}

async function hasAnyFile(dir: string): Promise<boolean> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    if (e.isFile() && e.name.endsWith(".json")) return true;
    if (e.isDirectory() && (await hasAnyFile(join(dir, e.name)))) return true;
  }
  return false;
}
