/**
 * Where things live inside a store root, and the validation that keeps hostile digests, refs
 * and names from ever naming a path outside it.
 *
 *   oci-layout                      {"imageLayoutVersion":"1.0.0"}
 *   index.json                      OCI image index; named roots carry the ref.name annotation
 *   blobs/<alg>/<hex>               committed blobs, read-only
 *   ingest/<sha256(ref)>/           one resumable ingest: ref, data, total, expected,
 *                                   startedat, updatedat, hashstate (optional), lock
 *   .ferry/meta/<alg>/<hex>.json    labels and timestamps of one blob
 *   .ferry/locks/                   locks guarding index.json and metadata read-modify-writes
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { InvalidArgumentError, InvalidReferenceError, splitDigest, type Digest } from "@ferry/core";

export const OCI_LAYOUT_FILE = "oci-layout";
export const INDEX_FILE = "index.json";
export const OCI_LAYOUT_VERSION = "1.0.0";

/** Longest ingest ref accepted; refs are keys, not payloads. */
const MAX_REF_LENGTH = 1024;
/** Longest name accepted in index.json. */
const MAX_NAME_LENGTH = 512;

export class Layout {
  readonly root: string;
  readonly blobsDir: string;
  readonly ingestDir: string;
  readonly metaDir: string;
  readonly locksDir: string;
  /** One file per transfer holding the store's content against garbage collection. */
  readonly leasesDir: string;

  constructor(root: string) {
    this.root = root;
    this.blobsDir = join(root, "blobs");
    this.ingestDir = join(root, "ingest");
    this.metaDir = join(root, ".ferry", "meta");
    this.locksDir = join(root, ".ferry", "locks");
    this.leasesDir = join(root, ".ferry", "leases");
  }

  get layoutFile(): string {
    return join(this.root, OCI_LAYOUT_FILE);
  }

  get indexFile(): string {
    return join(this.root, INDEX_FILE);
  }

  /** Path of a committed blob. The digest is validated first (`InvalidDigest`). */
  blobPath(digest: Digest | string): string {
    const { algorithm, encoded } = splitDigest(digest);
    return join(this.blobsDir, algorithm, encoded);
  }

  blobAlgDir(digest: Digest | string): string {
    return join(this.blobsDir, splitDigest(digest).algorithm);
  }

  metaPath(digest: Digest | string): string {
    const { algorithm, encoded } = splitDigest(digest);
    return join(this.metaDir, algorithm, `${encoded}.json`);
  }

  metaLockPath(digest: Digest | string): string {
    const { algorithm, encoded } = splitDigest(digest);
    return join(this.locksDir, `meta-${algorithm}-${encoded}`);
  }

  get indexLockPath(): string {
    return join(this.locksDir, "index.json");
  }

  /** Directory of the ingest `ref`; the ref is validated first (`InvalidArgument`). */
  ingestPath(ref: string): string {
    validateRef(ref);
    return join(this.ingestDir, ingestKey(ref));
  }
}

/** The directory name of an ingest: sha256 of its ref, so any ref maps to one safe path. */
export function ingestKey(ref: string): string {
  return createHash("sha256").update(ref, "utf8").digest("hex");
}

export function isIngestKey(name: string): boolean {
  return /^[0-9a-f]{64}$/.test(name);
}

/**
 * Refuse refs that look like paths or carry control characters. The ref is hashed before it
 * touches the filesystem, so this is about catching callers that confuse refs with paths.
 */
export function validateRef(ref: unknown): asserts ref is string {
  if (typeof ref !== "string" || ref.length === 0) {
    throw new InvalidArgumentError("ingest ref must be a non-empty string");
  }
  if (ref.length > MAX_REF_LENGTH) {
    throw new InvalidArgumentError(`ingest ref is ${ref.length} characters long, the limit is ${MAX_REF_LENGTH}`);
  }
  // Control characters, path separators and dot-dot sequences.
  if (/[\u0000-\u001f\u007f/\\]/.test(ref) || ref.includes("..")) {
    throw new InvalidArgumentError(`invalid ingest ref ${JSON.stringify(ref.slice(0, 80))}: no "/", "\\", ".." or control characters allowed`, {
      details: { ref: ref.slice(0, 200) },
    });
  }
}

// The grammar of org.opencontainers.image.ref.name in the image-layout spec.
const COMPONENT = "[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*";
const NAME_RE = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);

/** Refuse names that the OCI image-layout `ref.name` grammar does not allow. */
export function validateName(name: unknown): asserts name is string {
  if (typeof name !== "string" || name.length === 0) {
    throw new InvalidReferenceError("name must be a non-empty string");
  }
  if (name.length > MAX_NAME_LENGTH || !NAME_RE.test(name)) {
    throw new InvalidReferenceError(
      `invalid name ${JSON.stringify(name.slice(0, 80))}: names follow the OCI ref.name grammar (alphanumeric components joined by "-", ".", "_", ":", "@", "+" or "/")`,
      { details: { name: name.slice(0, 200) } },
    );
  }
}
