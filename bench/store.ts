/**
 * `pnpm bench:store [SIZE_MIB] [RUNS]`: ingest one large generated file into store-fs and
 * compare with `sha256sum` of the same file.
 *
 * The file (default 1024 MiB) is generated once in a temp dir and read back in 1 MiB chunks
 * into an FsStore writer, which hashes (node:crypto), writes to its ingest and commits (one
 * fsync, link into blobs/). `sha256sum` only reads and hashes, so the ratio ferry/sha256sum
 * shows what the store costs on top of hashing. Both read the file from the page cache after a
 * warm-up read. For reference it also times the same read loop hashing with node:crypto and no
 * store (Debian's sha256sum does not use the CPU's SHA extensions; OpenSSL does). Medians of
 * RUNS (default 3). `--wasm` also measures the hash-wasm digesters with checkpoints; `--small`
 * measures 16 KiB writes with and without batching. The machine is shared: numbers are rough.
 *
 * `pnpm bench:store --blobs N [--store-src DIR]` instead writes N small blobs (4–64 KiB, as in
 * case 4 of `pnpm bench`) through core's `writeBlob`, 8 at a time, into a fresh store-fs and
 * prints blobs/s and the process CPU time of the loop; `--store-src` imports another copy of
 * store-fs's `src/` (e.g. an older commit's, for an A/B run); `--memory` uses store-memory
 * instead (the floor: everything but the filesystem store); `--no-fsync` opens store-fs with
 * `fsync: false`.
 */
import { spawnSync } from "node:child_process";
import { createHash, randomFillSync } from "node:crypto";
import { mkdtemp, open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DigesterFactory } from "../packages/core/src/index.ts";
import { hashWasmDigesters, openFsStore } from "../packages/store-fs/src/index.ts";

const positional = process.argv.slice(2).filter((a) => !a.startsWith("--"));
const sizeMiB = Number(positional[0] ?? 1024);
const runs = Number(positional[1] ?? 3);
const withWasm = process.argv.includes("--wasm");
const withSmall = process.argv.includes("--small");
const CHUNK = 1024 * 1024;
const size = sizeMiB * CHUNK;

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const mbps = (bytes: number, ms: number): number => bytes / 1e6 / (ms / 1000);

async function generate(path: string): Promise<void> {
  const fh = await open(path, "w");
  const buf = Buffer.alloc(CHUNK);
  randomFillSync(buf);
  for (let i = 0; i < sizeMiB; i++) {
    buf.writeUInt32LE(i, 0); // every MiB differs
    await fh.write(buf, 0, CHUNK, i * CHUNK);
  }
  await fh.close();
}

function timeSha256sum(path: string): { ms: number; digest: string } {
  const t0 = performance.now();
  const r = spawnSync("sha256sum", [path], { encoding: "utf8" });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`sha256sum failed: ${r.stderr}`);
  return { ms, digest: `sha256:${r.stdout.split(" ")[0]}` };
}

/** The same read loop with node:crypto and no store: the floor the store's overhead sits on. */
async function timeNodeHash(path: string): Promise<{ ms: number; digest: string }> {
  const t0 = performance.now();
  const src = await open(path, "r");
  const h = createHash("sha256");
  const buf = Buffer.allocUnsafe(CHUNK);
  for (let off = 0; off < size; ) {
    const { bytesRead } = await src.read(buf, 0, CHUNK, off);
    if (bytesRead === 0) break;
    h.update(buf.subarray(0, bytesRead));
    off += bytesRead;
  }
  await src.close();
  return { ms: performance.now() - t0, digest: `sha256:${h.digest("hex")}` };
}

async function timeFerry(
  path: string,
  root: string,
  digesters?: DigesterFactory,
  chunk = CHUNK,
  writeBatchBytes?: number,
): Promise<{ ms: number; digest: string }> {
  await rm(root, { recursive: true, force: true });
  const store = await openFsStore(root, { ...(digesters ? { digesters } : {}), ...(writeBatchBytes ? { writeBatchBytes } : {}) });
  const t0 = performance.now();
  const src = await open(path, "r");
  const w = await store.writer({ ref: "bench", total: size });
  const buf = Buffer.allocUnsafe(chunk);
  for (let off = 0; off < size; ) {
    const { bytesRead } = await src.read(buf, 0, chunk, off);
    if (bytesRead === 0) break;
    await w.write(buf.subarray(0, bytesRead));
    off += bytesRead;
  }
  await src.close();
  const digest = w.digest();
  await w.commit(size, digest);
  const ms = performance.now() - t0;
  return { ms, digest };
}

const blobsArg = process.argv.indexOf("--blobs");
if (blobsArg > 0) {
  await benchSmallBlobs(Number(process.argv[blobsArg + 1] ?? 1000));
  process.exit(0);
}

/** N blobs of 4–64 KiB through writeBlob at concurrency 8, as a pull of case 4 stores them. */
async function benchSmallBlobs(n: number): Promise<void> {
  const srcArg = process.argv.indexOf("--store-src");
  const mod = (srcArg > 0 ? await import(join(process.argv[srcArg + 1]!, "index.ts")) : { openFsStore }) as { openFsStore: typeof openFsStore };
  const { digestOf, writeBlob, ingestRef, MediaTypes } = await import("../packages/core/src/index.ts");
  const blobs = Array.from({ length: n }, () => {
    const data = new Uint8Array(4096 + Math.floor(Math.random() * 60 * 1024));
    randomFillSync(data);
    return { data, desc: { mediaType: MediaTypes.OciLayer, digest: digestOf(data), size: data.byteLength } };
  });
  const root = await mkdtemp(join(tmpdir(), "ferry-bench-small-"));
  try {
    const store = process.argv.includes("--memory")
      ? (await import("../packages/store-memory/src/index.ts")).createMemoryStore()
      : await mod.openFsStore(root, { fsync: !process.argv.includes("--no-fsync") });
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < blobs.length) {
          const b = blobs[next++]!;
          await writeBlob(store, ingestRef(b.desc), { open: (offset = 0) => chunks(b.data.subarray(offset)) }, b.desc);
        }
      }),
    );
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    console.log(`${n} blobs: ${((n * 1000) / ms).toFixed(0)} blobs/s, ${ms.toFixed(0)} ms, CPU ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s (user ${(cpu.user / 1e6).toFixed(2)}, sys ${(cpu.system / 1e6).toFixed(2)})`);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

/** 16 KiB chunks, about what an HTTP response body delivers. */
async function* chunks(data: Uint8Array): AsyncGenerator<Uint8Array> {
  for (let o = 0; o < data.byteLength; o += 16 * 1024) yield data.subarray(o, o + 16 * 1024);
}

const dir = await mkdtemp(join(tmpdir(), "ferry-bench-store-"));
try {
  const file = join(dir, "input.bin");
  console.log(`generating ${sizeMiB} MiB in ${file} …`);
  await generate(file);
  timeSha256sum(file); // warm the page cache

  const sums: number[] = [];
  const ferry: number[] = [];
  const wasm: number[] = [];
  const hashOnly: number[] = [];
  let want = "";
  for (let i = 0; i < runs; i++) {
    const s = timeSha256sum(file);
    want = s.digest;
    sums.push(s.ms);
    const f = await timeFerry(file, join(dir, "store"));
    if (f.digest !== want) throw new Error(`digest mismatch: ferry ${f.digest}, sha256sum ${want}`);
    ferry.push(f.ms);
    const n = await timeNodeHash(file);
    if (n.digest !== want) throw new Error(`digest mismatch: node:crypto ${n.digest}`);
    hashOnly.push(n.ms);
    if (withWasm) {
      const h = await timeFerry(file, join(dir, "store"), hashWasmDigesters);
      if (h.digest !== want) throw new Error(`digest mismatch (hash-wasm): ${h.digest}`);
      wasm.push(h.ms);
    }
    console.log(`run ${i + 1}/${runs}: sha256sum ${mbps(size, s.ms).toFixed(0)} MB/s, ferry store-fs ${mbps(size, f.ms).toFixed(0)} MB/s, node:crypto read+hash ${mbps(size, n.ms).toFixed(0)} MB/s${withWasm ? `, hash-wasm ${mbps(size, wasm.at(-1)!).toFixed(0)} MB/s` : ""}`);
  }
  const sMB = mbps(size, median(sums));
  const fMB = mbps(size, median(ferry));
  console.log(`\n${sizeMiB} MiB, median of ${runs} runs, 1 MiB chunks, fsync at commit`);
  console.log(`sha256sum (read + hash):              ${sMB.toFixed(0)} MB/s`);
  console.log(`ferry store-fs (hash + write + commit): ${fMB.toFixed(0)} MB/s`);
  if (withWasm) console.log(`ferry store-fs with hash-wasm:          ${mbps(size, median(wasm)).toFixed(0)} MB/s`);
  console.log(`node:crypto read + hash, no store:      ${mbps(size, median(hashOnly)).toFixed(0)} MB/s (reference)`);
  console.log(`ratio ferry/sha256sum: ${(fMB / sMB).toFixed(2)}`);

  if (withSmall) {
    // 16 KiB writes: batched into 1 MiB writevs (default) vs one write syscall each.
    const batched: number[] = [];
    const unbatched: number[] = [];
    for (let i = 0; i < runs; i++) {
      batched.push((await timeFerry(file, join(dir, "store"), undefined, 16 * 1024)).ms);
      unbatched.push((await timeFerry(file, join(dir, "store"), undefined, 16 * 1024, 16 * 1024)).ms);
    }
    const b = mbps(size, median(batched));
    const u = mbps(size, median(unbatched));
    console.log(`16 KiB writes, batched to 1 MiB:       ${b.toFixed(0)} MB/s`);
    console.log(`16 KiB writes, one syscall each:       ${u.toFixed(0)} MB/s (batching ${(b / u).toFixed(2)}x)`);
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
