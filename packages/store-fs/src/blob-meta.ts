/**
 * Labels and timestamps of committed blobs, one small JSON file per digest under
 * `.ferry/meta/`. Each file is replaced atomically (rename) and read-modify-writes take a
 * per-digest lock, so concurrent processes never lose each other's label updates. A blob
 * without a metadata file (committed without labels, which sets its mtime to the commit time;
 * written by skopeo or umoci; or a crash right after commit) gets its file's mtime as
 * timestamps and no labels.
 */
import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { InvalidArgumentError, type Digest } from "@ferry/core";
import { FileLock, METADATA_LOCK_WAIT_MS } from "./file-lock.ts";
import { readOptional, unlinkIfExists, writeFileAtomic } from "./fs-util.ts";
import type { Layout } from "./layout.ts";

export interface BlobMeta {
  createdAt: string;
  updatedAt: string;
  labels: Record<string, string>;
}

/** Total bytes of label keys and values one blob may carry. */
const MAX_LABEL_BYTES = 64 * 1024;

export class BlobMetaStore {
  readonly #layout: Layout;
  readonly #staleMs: number;

  constructor(layout: Layout, staleMs: number) {
    this.#layout = layout;
    this.#staleMs = staleMs;
  }

  async read(digest: Digest): Promise<BlobMeta | undefined> {
    const raw = await readOptional(this.#layout.metaPath(digest));
    if (raw === undefined) return undefined;
    try {
      return normalize(JSON.parse(raw));
    } catch {
      return undefined; // unreadable metadata is treated as absent, never fatal for reads
    }
  }

  async write(digest: Digest, meta: BlobMeta): Promise<void> {
    const path = this.#layout.metaPath(digest);
    await mkdir(dirname(path), { recursive: true });
    await writeFileAtomic(path, JSON.stringify(meta));
  }

  /** Read, change and write back one blob's metadata under its lock. */
  async modify(digest: Digest, fallback: () => Promise<BlobMeta>, change: (meta: BlobMeta) => BlobMeta): Promise<BlobMeta> {
    await mkdir(this.#layout.locksDir, { recursive: true });
    const lock = await FileLock.acquire(this.#layout.metaLockPath(digest), `metadata of ${digest}`, {
      waitMs: METADATA_LOCK_WAIT_MS,
      staleMs: this.#staleMs,
    });
    try {
      const current = (await this.read(digest)) ?? (await fallback());
      const next = change(current);
      await this.write(digest, next);
      return next;
    } finally {
      await lock.release();
    }
  }

  async remove(digest: Digest): Promise<void> {
    await unlinkIfExists(this.#layout.metaPath(digest));
  }
}

/** Check labels are string → string and reasonably small. */
export function validateLabels(labels: unknown): Record<string, string> {
  if (labels === undefined) return {};
  if (typeof labels !== "object" || labels === null || Array.isArray(labels)) {
    throw new InvalidArgumentError("labels must be an object of strings");
  }
  let bytes = 0;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) {
    if (typeof v !== "string" || k.length === 0) throw new InvalidArgumentError(`label ${JSON.stringify(k)} must have a non-empty key and a string value`);
    bytes += Buffer.byteLength(k) + Buffer.byteLength(v);
    out[k] = v;
  }
  if (bytes > MAX_LABEL_BYTES) throw new InvalidArgumentError(`labels take ${bytes} bytes, the limit is ${MAX_LABEL_BYTES}`);
  return out;
}

function normalize(v: unknown): BlobMeta | undefined {
  if (typeof v !== "object" || v === null) return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o.createdAt !== "string" || typeof o.updatedAt !== "string") return undefined;
  const labels: Record<string, string> = {};
  if (typeof o.labels === "object" && o.labels !== null) {
    for (const [k, val] of Object.entries(o.labels)) if (typeof val === "string") labels[k] = val;
  }
  return { createdAt: o.createdAt, updatedAt: o.updatedAt, labels };
}
