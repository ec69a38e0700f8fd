/**
 * Repository metadata: what the content store does not know. Blobs live once in the content
 * store; a repository only sees the blobs linked into it (pushed or mounted there), its manifests,
 * tags, the subject index for the referrers API and the upload sessions started in it.
 */
import type { Descriptor, Digest } from "@ferry/core";

/** A manifest linked into a repository. */
export interface ManifestLink {
  digest: Digest;
  size: number;
  mediaType: string;
  /** Digest of the manifest's `subject`, when it has one (to clean the referrers index). */
  subject?: Digest;
}

/** An upload session (its data is the content store ingest `upload-<uuid>`). */
export interface UploadSession {
  uuid: string;
  repository: string;
  startedAt: string;
  /** Last time data was appended or the session was touched (ISO string). */
  updatedAt: string;
}

export interface RegistryStorage {
  /** Every repository that holds at least one blob, manifest or tag, sorted. */
  listRepositories(): Promise<string[]>;
  hasRepository(repo: string): Promise<boolean>;

  linkBlob(repo: string, digest: Digest, size: number): Promise<void>;
  /** Size of a blob linked into `repo`, or undefined when not linked. */
  blobLink(repo: string, digest: Digest): Promise<{ size: number } | undefined>;
  /** True when a link was removed. */
  unlinkBlob(repo: string, digest: Digest): Promise<boolean>;

  linkManifest(repo: string, link: ManifestLink): Promise<void>;
  manifestLink(repo: string, digest: Digest): Promise<ManifestLink | undefined>;
  unlinkManifest(repo: string, digest: Digest): Promise<boolean>;

  setTag(repo: string, tag: string, desc: Descriptor): Promise<void>;
  getTag(repo: string, tag: string): Promise<Descriptor | undefined>;
  deleteTag(repo: string, tag: string): Promise<boolean>;
  /** Tag names, sorted. */
  listTags(repo: string): Promise<string[]>;

  addReferrer(repo: string, subject: Digest, desc: Descriptor): Promise<void>;
  removeReferrer(repo: string, subject: Digest, digest: Digest): Promise<void>;
  listReferrers(repo: string, subject: Digest): Promise<Descriptor[]>;

  putUpload(session: UploadSession): Promise<void>;
  getUpload(uuid: string): Promise<UploadSession | undefined>;
  deleteUpload(uuid: string): Promise<void>;
  listUploads(): Promise<UploadSession[]>;
}

/** Plain byte-order comparison, the order tag and catalog listings use. */
export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
