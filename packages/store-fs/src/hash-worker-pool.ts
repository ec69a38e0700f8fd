/**
 * One worker thread per process that hashes (node:crypto) the batches of large ingests, so that
 * on a multi-core machine receiving (main thread), hashing (this worker) and writing (libuv's
 * thread pool) overlap instead of taking turns on the main thread. Batches live in
 * SharedArrayBuffers: the worker hashes a batch while the thread pool writes the same bytes to
 * the ingest file, and nothing is copied or transferred between threads.
 *
 * The worker's source is a plain string evaluated by `new Worker(…, { eval: true })`: it then
 * runs the same under tsx, vitest and an esbuild bundle, with no file of its own to locate.
 *
 * A worker that dies (crash, `terminate()`) rejects every pending call with `Internal`, and
 * every ingest opened on it fails from then on (its hash state is gone); the next ingest starts
 * a new worker.
 */
import { Worker } from "node:worker_threads";
import { InternalError, type DigestAlgorithm } from "@ferry/core";

const WORKER_SOURCE = `
"use strict";
const { parentPort, workerData } = require("node:worker_threads");
// Dying (an uncaught exception included) says so in shared memory: a main thread blocked in a
// synchronous digest never sees this worker's 'exit' event.
const dead = new Int32Array(workerData.dead);
process.on("exit", () => {
  Atomics.store(dead, 0, 1);
  Atomics.notify(dead, 0);
});
const { createHash } = require("node:crypto");
const { readSync } = require("node:fs");
const hashes = new Map();
const algorithms = new Map();
const errorOf = (err) => ({
  message: String((err && err.message) || err),
  code: err && err.code,
  errno: err && err.errno,
  syscall: err && err.syscall,
});
const reply = (m, out) => parentPort.postMessage(Object.assign({ seq: m.seq }, out));
const hashOf = (id) => {
  const h = hashes.get(id);
  if (h === undefined) throw new Error("unknown ingest " + id);
  return h;
};
parentPort.on("message", (m) => {
  try {
    switch (m.op) {
      case "open": {
        const h = createHash(m.algorithm);
        if (m.rehash > 0) {
          // A resumed ingest: rebuild the running hash from the bytes already on disk.
          const buf = Buffer.allocUnsafe(Math.min(1 << 20, m.rehash));
          let pos = 0;
          while (pos < m.rehash) {
            const n = readSync(m.fd, buf, 0, Math.min(buf.length, m.rehash - pos), pos);
            if (n === 0) throw new Error("ingest data ended at " + pos + " bytes while re-hashing up to " + m.rehash);
            h.update(buf.subarray(0, n));
            pos += n;
          }
        }
        hashes.set(m.id, h);
        algorithms.set(m.id, m.algorithm);
        return reply(m, {});
      }
      case "hash":
        hashOf(m.id).update(new Uint8Array(m.buf, 0, m.len));
        return reply(m, {});
      case "digest": {
        const h = hashOf(m.id).copy();
        if (m.extra) h.update(m.extra);
        const hex = h.digest("hex");
        if (m.shared) {
          // A synchronous caller blocks in Atomics.wait on the flag; it cannot read a message.
          const flag = new Int32Array(m.shared, 0, 1);
          new Uint8Array(m.shared, 8).set(Buffer.from(hex, "latin1"));
          Atomics.store(flag, 0, hex.length);
          Atomics.notify(flag, 0);
          return;
        }
        return reply(m, { hex });
      }
      case "reset":
        hashes.set(m.id, createHash(algorithms.get(m.id)));
        return reply(m, {});
      case "close":
        hashes.delete(m.id);
        algorithms.delete(m.id);
        return;
      case "crash":
        // Test hook: an uncaught exception outside the try below.
        setImmediate(() => { throw new Error("hash worker crash requested"); });
        return;
    }
  } catch (err) {
    if (m.shared) {
      const flag = new Int32Array(m.shared, 0, 1);
      Atomics.store(flag, 0, -1);
      Atomics.notify(flag, 0);
      return;
    }
    reply(m, { error: errorOf(err) });
  }
});
`;

/** How long a synchronous digest waits for the worker before giving up. */
const SYNC_DIGEST_TIMEOUT_MS = 60_000;
/** How often a synchronous digest looks whether the worker died meanwhile. */
const SYNC_DEATH_CHECK_MS = 10;

interface Reply {
  seq: number;
  error?: { message: string; code?: string; errno?: number; syscall?: string };
  hex?: string;
}

interface Pending {
  resolve(r: Reply): void;
  reject(err: unknown): void;
}

/** An ingest's handle on the worker: its id and the worker life it belongs to. */
export interface PoolIngest {
  readonly id: number;
  readonly generation: number;
}

export class HashWorkerPool {
  static #shared: HashWorkerPool | undefined;

  /** The process-wide pool (one worker, started on first use). */
  static shared(): HashWorkerPool {
    HashWorkerPool.#shared ??= new HashWorkerPool();
    return HashWorkerPool.#shared;
  }

  #worker: Worker | undefined;
  /** Set to 1 by the current worker as it exits. */
  #dead: Int32Array | undefined;
  #died: ((reason: string) => void) | undefined;
  /** Bumped each time a worker dies: ingests of an earlier generation are unusable. */
  #generation = 0;
  #deathReason: string | undefined;
  #seq = 0;
  #nextId = 0;
  readonly #pending = new Map<number, Pending>();

  /** Register an ingest whose first `rehash` bytes are already in `fd` (the worker re-hashes them). */
  async open(fd: number, algorithm: DigestAlgorithm, rehash: number): Promise<PoolIngest> {
    const worker = this.#start();
    const ingest = { id: ++this.#nextId, generation: this.#generation };
    await this.#call(worker, { op: "open", id: ingest.id, fd, algorithm, rehash });
    return ingest;
  }

  /** Hash the first `len` bytes of `buf` into the ingest (the caller must not change them until this resolves). */
  async hash(ingest: PoolIngest, buf: SharedArrayBuffer, len: number): Promise<void> {
    await this.#call(this.#live(ingest), { op: "hash", id: ingest.id, buf, len });
  }

  /** The hex digest of everything hashed so far (after the batches already posted). */
  async digest(ingest: PoolIngest): Promise<string> {
    const r = await this.#call(this.#live(ingest), { op: "digest", id: ingest.id });
    return r.hex!;
  }

  /**
   * The same, synchronously, with `extra` bytes (not yet posted) appended: the main thread
   * blocks in `Atomics.wait` until the worker has hashed every batch posted before this call.
   */
  digestSync(ingest: PoolIngest, extra: Uint8Array | undefined): string {
    const worker = this.#live(ingest);
    const shared = new SharedArrayBuffer(8 + 128);
    const flag = new Int32Array(shared, 0, 1);
    worker.postMessage({ op: "digest", id: ingest.id, shared, extra: extra && extra.byteLength > 0 ? extra.slice() : undefined });
    const deadline = Date.now() + SYNC_DIGEST_TIMEOUT_MS;
    while (Atomics.load(flag, 0) === 0) {
      if (this.#dead !== undefined && Atomics.load(this.#dead, 0) === 1) {
        this.#died?.("exited during a digest");
        throw new InternalError("hash worker died before answering a digest; close and reopen the writer to resume");
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new InternalError(`hash worker did not answer a digest within ${SYNC_DIGEST_TIMEOUT_MS} ms`);
      Atomics.wait(flag, 0, 0, Math.min(left, SYNC_DEATH_CHECK_MS));
    }
    const n = Atomics.load(flag, 0);
    if (n < 0) throw new InternalError("hash worker failed to compute a digest");
    return Buffer.from(new Uint8Array(shared, 8, n)).toString("latin1");
  }

  /** Start the ingest's hash again from zero (after truncate). */
  async reset(ingest: PoolIngest): Promise<void> {
    await this.#call(this.#live(ingest), { op: "reset", id: ingest.id });
  }

  /** Forget the ingest (no reply; nothing of it may be in flight). */
  release(ingest: PoolIngest): void {
    if (ingest.generation === this.#generation && this.#worker !== undefined) this.#worker.postMessage({ op: "close", id: ingest.id });
  }

  /**
   * Test hook: make the worker die of an uncaught exception. `blockUntilDead` keeps this thread
   * busy (as a long synchronous task would) until the worker is gone, so that its 'exit' event
   * is still unhandled when the caller goes on.
   */
  crashForTest(options: { blockUntilDead?: boolean } = {}): void {
    this.#worker?.postMessage({ op: "crash" });
    if (options.blockUntilDead && this.#dead !== undefined) Atomics.wait(this.#dead, 0, 0, 10_000);
  }

  #live(ingest: PoolIngest): Worker {
    if (ingest.generation !== this.#generation || this.#worker === undefined) {
      throw new InternalError(`the hash worker of this ingest died (${this.#deathReason ?? "unknown reason"}); close and reopen the writer to resume`);
    }
    return this.#worker;
  }

  #start(): Worker {
    if (this.#worker !== undefined) return this.#worker;
    const dead = new Int32Array(new SharedArrayBuffer(4));
    const worker = new Worker(WORKER_SOURCE, { eval: true, name: "ferry-hash", workerData: { dead: dead.buffer } });
    worker.unref();
    worker.on("message", (r: Reply) => {
      const p = this.#pending.get(r.seq);
      if (p === undefined) return;
      this.#pending.delete(r.seq);
      if (this.#pending.size === 0) worker.unref();
      if (r.error === undefined) return p.resolve(r);
      const err = Object.assign(new Error(r.error.message), { code: r.error.code, errno: r.error.errno, syscall: r.error.syscall });
      p.reject(err);
    });
    const died = (reason: string): void => {
      if (this.#worker !== worker) return;
      this.#worker = undefined;
      this.#generation++;
      this.#deathReason = reason;
      const pending = [...this.#pending.values()];
      this.#pending.clear();
      for (const p of pending) p.reject(new InternalError(`hash worker died: ${reason}`));
    };
    worker.on("error", (err) => died(err.message));
    worker.on("exit", (code) => died(`exited with code ${code}`));
    this.#worker = worker;
    this.#dead = dead;
    this.#died = died;
    return worker;
  }

  #call(worker: Worker, msg: Record<string, unknown>): Promise<Reply> {
    const seq = ++this.#seq;
    return new Promise<Reply>((resolve, reject) => {
      if (this.#pending.size === 0) worker.ref();
      this.#pending.set(seq, { resolve, reject });
      worker.postMessage({ ...msg, seq });
    });
  }
}
