/**
 * The NameStore role on the layout's `index.json`: each name is a manifest entry annotated
 * with `org.opencontainers.image.ref.name`, which is what skopeo (`oci:DIR:NAME`) and umoci
 * look up. Changes are read-modify-writes under a cross-process lock and land with an atomic
 * rename; entries and fields ferry does not know are kept as they are.
 */
import { mkdir } from "node:fs/promises";
import {
  AnnotationRefName,
  FailedPreconditionError,
  InvalidArgumentError,
  isDigest,
  MediaTypes,
  NotFoundError,
  parseDigest,
  type Descriptor,
} from "@ferry/core";
import { FileLock, METADATA_LOCK_WAIT_MS } from "./file-lock.ts";
import { readOptional, writeFileAtomic } from "./fs-util.ts";
import { validateName, type Layout } from "./layout.ts";

/** index.json is a small document; a bigger one is refused rather than buffered. */
const MAX_INDEX_BYTES = 16 * 1024 * 1024;

interface IndexDocument {
  schemaVersion: number;
  mediaType?: string;
  manifests: Descriptor[];
  [key: string]: unknown;
}

export function emptyIndex(): IndexDocument {
  return { schemaVersion: 2, mediaType: MediaTypes.OciIndex, manifests: [] };
}

export class NameIndex {
  readonly #layout: Layout;
  readonly #staleMs: number;
  readonly #fsync: boolean;

  constructor(layout: Layout, staleMs: number, fsync: boolean) {
    this.#layout = layout;
    this.#staleMs = staleMs;
    this.#fsync = fsync;
  }

  async get(name: string): Promise<Descriptor> {
    validateName(name);
    const index = await this.#read();
    const hit = index.manifests.find((m) => refName(m) === name);
    if (!hit) throw new NotFoundError(`name ${JSON.stringify(name)} not found in ${this.#layout.indexFile}`, { details: { name } });
    return stripRefName(hit);
  }

  async list(): Promise<Array<{ name: string; descriptor: Descriptor }>> {
    const index = await this.#read();
    const out: Array<{ name: string; descriptor: Descriptor }> = [];
    for (const m of index.manifests) {
      const name = refName(m);
      if (name !== undefined) out.push({ name, descriptor: stripRefName(m) });
    }
    return out;
  }

  /** Every entry of index.json with a digest, named or not (skopeo writes `oci:DIR` unnamed). */
  async roots(): Promise<Descriptor[]> {
    const index = await this.#read();
    return index.manifests.filter((m) => isObject(m) && isDigest(m.digest)).map(stripRefName);
  }

  async set(name: string, desc: Descriptor): Promise<void> {
    validateName(name);
    const entry = checkDescriptor(desc);
    entry.annotations = { ...entry.annotations, [AnnotationRefName]: name };
    await this.#modify((index) => {
      // Replace in place so the order of names stays stable; drop duplicates of the name.
      let placed = false;
      const out: Descriptor[] = [];
      for (const m of index.manifests) {
        if (refName(m) !== name) out.push(m);
        else if (!placed) {
          out.push(entry);
          placed = true;
        }
      }
      if (!placed) out.push(entry);
      index.manifests = out;
    });
  }

  async delete(name: string): Promise<void> {
    validateName(name);
    let found = false;
    await this.#modify((index) => {
      const before = index.manifests.length;
      index.manifests = index.manifests.filter((m) => refName(m) !== name);
      found = index.manifests.length !== before;
    });
    if (!found) throw new NotFoundError(`name ${JSON.stringify(name)} not found`, { details: { name } });
  }

  async #read(): Promise<IndexDocument> {
    const raw = await readOptional(this.#layout.indexFile);
    if (raw === undefined) return emptyIndex();
    if (raw.length > MAX_INDEX_BYTES) throw new FailedPreconditionError(`${this.#layout.indexFile} is larger than ${MAX_INDEX_BYTES} bytes`);
    let doc: unknown;
    try {
      doc = JSON.parse(raw);
    } catch (err) {
      throw new FailedPreconditionError(`${this.#layout.indexFile} is not valid JSON`, { cause: err });
    }
    if (typeof doc !== "object" || doc === null || !Array.isArray((doc as IndexDocument).manifests)) {
      throw new FailedPreconditionError(`${this.#layout.indexFile} is not an OCI image index (no manifests array)`);
    }
    return doc as IndexDocument;
  }

  async #modify(change: (index: IndexDocument) => void): Promise<void> {
    await mkdir(this.#layout.locksDir, { recursive: true });
    const lock = await FileLock.acquire(this.#layout.indexLockPath, "index.json", { waitMs: METADATA_LOCK_WAIT_MS, staleMs: this.#staleMs });
    try {
      const index = await this.#read();
      change(index);
      await writeFileAtomic(this.#layout.indexFile, `${JSON.stringify(index)}\n`, { fsync: this.#fsync });
    } finally {
      await lock.release();
    }
  }
}

function isObject(v: unknown): v is Descriptor {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function refName(desc: Descriptor): string | undefined {
  // Another tool's index.json may hold anything in its list (`null`): no name there.
  if (!isObject(desc)) return undefined;
  const v = desc.annotations?.[AnnotationRefName];
  return typeof v === "string" ? v : undefined;
}

/**
 * The descriptor without the ref.name annotation: in a layout that annotation is the name
 * itself (the key of the entry), not part of the value.
 */
function stripRefName(desc: Descriptor): Descriptor {
  const out: Descriptor = { ...desc };
  if (out.annotations) {
    const { [AnnotationRefName]: _name, ...rest } = out.annotations;
    if (Object.keys(rest).length > 0) out.annotations = rest;
    else delete out.annotations;
  }
  return out;
}

function checkDescriptor(desc: Descriptor): Descriptor {
  if (typeof desc !== "object" || desc === null) throw new InvalidArgumentError("descriptor must be an object");
  if (typeof desc.mediaType !== "string" || desc.mediaType.length === 0) throw new InvalidArgumentError("descriptor needs a mediaType");
  if (!Number.isSafeInteger(desc.size) || desc.size < 0) throw new InvalidArgumentError("descriptor size must be a non-negative integer");
  parseDigest(desc.digest);
  return JSON.parse(JSON.stringify(desc)) as Descriptor;
}
