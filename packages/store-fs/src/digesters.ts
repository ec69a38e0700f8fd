/**
 * Digester factories for store-fs. `node:crypto` (core's `nodeDigesters`) is the fast default
 * but cannot export its state, so a resumed ingest re-reads its data. `hashWasmDigesters` wraps
 * hash-wasm, whose state can be saved and loaded across processes: the store checkpoints it
 * while writing and a resume re-hashes only the tail (hash-wasm hashes at roughly a sixth of
 * node:crypto's speed, so it pays off for very large, often interrupted blobs).
 */
import { createSHA256, createSHA512, type IHasher } from "hash-wasm";
import { FailedPreconditionError, type Digest, type DigestAlgorithm, type Digester, type DigesterFactory } from "@ferry/core";

/**
 * A factory whose digesters need asynchronous setup (a WebAssembly instance each). The sync
 * `create`/`restore` of {@link DigesterFactory} work after `prepare(algorithm)` (one prepared
 * instance per call); FsStore uses the async variants, which need no preparation.
 */
export interface AsyncDigesterFactory extends DigesterFactory {
  prepare(algorithm: DigestAlgorithm): Promise<void>;
  createAsync(algorithm: DigestAlgorithm): Promise<Digester>;
  restoreAsync(algorithm: DigestAlgorithm, state: Uint8Array): Promise<Digester>;
}

function isAsync(f: DigesterFactory): f is AsyncDigesterFactory {
  return typeof (f as Partial<AsyncDigesterFactory>).createAsync === "function";
}

/** A new digester from any factory. */
export async function newDigester(f: DigesterFactory, algorithm: DigestAlgorithm): Promise<Digester> {
  return isAsync(f) ? f.createAsync(algorithm) : f.create(algorithm);
}

/** A digester restored from saved state, or undefined when the factory cannot restore. */
export async function restoreDigester(f: DigesterFactory, algorithm: DigestAlgorithm, state: Uint8Array): Promise<Digester | undefined> {
  if (isAsync(f)) return f.restoreAsync(algorithm, state);
  return f.restore?.(algorithm, state);
}

class HashWasmDigester implements Digester {
  readonly algorithm: DigestAlgorithm;
  readonly #hasher: IHasher;

  constructor(algorithm: DigestAlgorithm, hasher: IHasher) {
    this.algorithm = algorithm;
    this.#hasher = hasher;
  }

  update(chunk: Uint8Array): void {
    this.#hasher.update(chunk);
  }

  digest(): Digest {
    // hash-wasm's digest() finalises the state; save and reload it so writing can go on.
    const state = this.#hasher.save();
    const hex = this.#hasher.digest("hex");
    this.#hasher.load(state);
    return `${this.algorithm}:${hex}` as Digest;
  }

  save(): Uint8Array {
    return this.#hasher.save();
  }
}

const spare: Record<DigestAlgorithm, IHasher[]> = { sha256: [], sha512: [] };

function instantiate(algorithm: DigestAlgorithm): Promise<IHasher> {
  return algorithm === "sha256" ? createSHA256() : createSHA512();
}

function take(algorithm: DigestAlgorithm): IHasher {
  const h = spare[algorithm].pop();
  if (h === undefined) {
    throw new FailedPreconditionError(`hashWasmDigesters: call prepare(${JSON.stringify(algorithm)}) before create/restore`);
  }
  return h;
}

function load(algorithm: DigestAlgorithm, hasher: IHasher, state: Uint8Array): Digester {
  try {
    hasher.load(state);
  } catch (err) {
    throw new FailedPreconditionError("hash state was not produced by this hash-wasm build", { cause: err });
  }
  return new HashWasmDigester(algorithm, hasher);
}

/** hash-wasm digesters with exportable state (`save()`), restorable in another process. */
export const hashWasmDigesters: AsyncDigesterFactory = {
  async prepare(algorithm) {
    spare[algorithm].push(await instantiate(algorithm));
  },
  create(algorithm) {
    return new HashWasmDigester(algorithm, take(algorithm).init());
  },
  restore(algorithm, state) {
    return load(algorithm, take(algorithm), state);
  },
  async createAsync(algorithm) {
    return new HashWasmDigester(algorithm, (await instantiate(algorithm)).init());
  },
  async restoreAsync(algorithm, state) {
    return load(algorithm, await instantiate(algorithm), state);
  },
};
