import type { Descriptor, Digest } from "@ferry/core";
import { compareNames, type ManifestLink, type RegistryStorage, type UploadSession } from "./storage.ts";

interface Repo {
  blobs: Map<Digest, { size: number }>;
  manifests: Map<Digest, ManifestLink>;
  tags: Map<string, Descriptor>;
  referrers: Map<Digest, Map<Digest, Descriptor>>;
}

/** Repository metadata held in memory (lost with the process). */
export class MemoryRegistryStorage implements RegistryStorage {
  #repos = new Map<string, Repo>();
  #uploads = new Map<string, UploadSession>();

  #repo(name: string): Repo {
    let r = this.#repos.get(name);
    if (r === undefined) {
      r = { blobs: new Map(), manifests: new Map(), tags: new Map(), referrers: new Map() };
      this.#repos.set(name, r);
    }
    return r;
  }

  async listRepositories(): Promise<string[]> {
    const out: string[] = [];
    for (const [name, r] of this.#repos) {
      if (r.blobs.size + r.manifests.size + r.tags.size > 0) out.push(name);
    }
    return out.sort(compareNames);
  }

  async hasRepository(repo: string): Promise<boolean> {
    const r = this.#repos.get(repo);
    return r !== undefined && r.blobs.size + r.manifests.size + r.tags.size > 0;
  }

  async linkBlob(repo: string, digest: Digest, size: number): Promise<void> {
    this.#repo(repo).blobs.set(digest, { size });
  }

  async blobLink(repo: string, digest: Digest): Promise<{ size: number } | undefined> {
    const l = this.#repos.get(repo)?.blobs.get(digest);
    return l === undefined ? undefined : { ...l };
  }

  async unlinkBlob(repo: string, digest: Digest): Promise<boolean> {
    return this.#repos.get(repo)?.blobs.delete(digest) ?? false;
  }

  async linkManifest(repo: string, link: ManifestLink): Promise<void> {
    this.#repo(repo).manifests.set(link.digest, { ...link });
  }

  async manifestLink(repo: string, digest: Digest): Promise<ManifestLink | undefined> {
    const l = this.#repos.get(repo)?.manifests.get(digest);
    return l === undefined ? undefined : { ...l };
  }

  async unlinkManifest(repo: string, digest: Digest): Promise<boolean> {
    return this.#repos.get(repo)?.manifests.delete(digest) ?? false;
  }

  async setTag(repo: string, tag: string, desc: Descriptor): Promise<void> {
    this.#repo(repo).tags.set(tag, { ...desc });
  }

  async getTag(repo: string, tag: string): Promise<Descriptor | undefined> {
    const d = this.#repos.get(repo)?.tags.get(tag);
    return d === undefined ? undefined : { ...d };
  }

  async deleteTag(repo: string, tag: string): Promise<boolean> {
    return this.#repos.get(repo)?.tags.delete(tag) ?? false;
  }

  async listTags(repo: string): Promise<string[]> {
    return [...(this.#repos.get(repo)?.tags.keys() ?? [])].sort(compareNames);
  }

  async addReferrer(repo: string, subject: Digest, desc: Descriptor): Promise<void> {
    const refs = this.#repo(repo).referrers;
    let m = refs.get(subject);
    if (m === undefined) refs.set(subject, (m = new Map()));
    m.set(desc.digest, { ...desc });
  }

  async removeReferrer(repo: string, subject: Digest, digest: Digest): Promise<void> {
    this.#repos.get(repo)?.referrers.get(subject)?.delete(digest);
  }

  async listReferrers(repo: string, subject: Digest): Promise<Descriptor[]> {
    const m = this.#repos.get(repo)?.referrers.get(subject);
    return m === undefined ? [] : [...m.values()].map((d) => ({ ...d }));
  }

  async putUpload(session: UploadSession): Promise<void> {
    this.#uploads.set(session.uuid, { ...session });
  }

  async getUpload(uuid: string): Promise<UploadSession | undefined> {
    const s = this.#uploads.get(uuid);
    return s === undefined ? undefined : { ...s };
  }

  async deleteUpload(uuid: string): Promise<void> {
    this.#uploads.delete(uuid);
  }

  async listUploads(): Promise<UploadSession[]> {
    return [...this.#uploads.values()].map((s) => ({ ...s }));
  }
}
