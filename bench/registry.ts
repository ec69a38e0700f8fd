/**
 * `pnpm bench:registry`: blob GET and chunked-upload throughput of the embedded registry
 * (@ferry/registry on @ferry/store-fs, in its own process) against docker-registry 2.8, plus the
 * cost of resuming an upload session after a server restart with node:crypto (re-hash the
 * partial data) versus hash-wasm checkpoints.
 *
 * The client is curl (PATCH from chunk files, GET into /dev/null).
 * Env: BENCH_SIZE_MIB (default 256), BENCH_CHUNK_MIB (16), BENCH_RUNS (3), BENCH_ONLY=resume
 * (skip the throughput part).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { execFile } from "node:child_process";
import { createReadStream, createWriteStream, existsSync } from "node:fs";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { InternalError } from "../packages/core/src/errors.ts";

const execFileAsync = promisify(execFile);
const MiB = 1024 * 1024;
const SIZE = Number(process.env.BENCH_SIZE_MIB ?? 256) * MiB;
const CHUNK = Number(process.env.BENCH_CHUNK_MIB ?? 16) * MiB;
const RUNS = Number(process.env.BENCH_RUNS ?? 3);

async function serve(dir: string, mode: string): Promise<void> {
  const { openFsStore, hashWasmDigesters } = await import("../packages/store-fs/src/index.ts");
  const { createRegistry, FsRegistryStorage } = await import("../packages/registry/src/index.ts");
  const store = await openFsStore(join(dir, "store"), mode === "hash-wasm" ? { digesters: hashWasmDigesters } : {});
  const registry = createRegistry({
    store,
    storage: new FsRegistryStorage(join(dir, "meta")),
  });
  const s = await registry.listen(0);
  // Exit with the parent (its end of our stdin closes), so a failed run leaves no server behind.
  process.stdin.on("end", () => process.exit(0));
  process.stdin.resume();
  process.stdout.write(`${JSON.stringify({ url: s.url })}\n`);
}

interface Server {
  url: string;
  stop(): Promise<void>;
}

async function startFerry(dir: string, mode: string): Promise<Server> {
  const self = fileURLToPath(import.meta.url);
  const args = ["--import", "tsx", self, "--serve", dir, mode];
  const child: ChildProcess = spawn(process.execPath, args, {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const [line] = (await once(child.stdout!, "data")) as [Buffer];
  const { url } = JSON.parse(line.toString().split("\n")[0]!) as { url: string };
  return {
    url,
    async stop() {
      child.kill("SIGKILL");
      if (child.exitCode === null && child.signalCode === null) await once(child, "exit");
    },
  };
}

async function makeSource(file: string): Promise<string> {
  const hash = createHash("sha256");
  const out = createWriteStream(file);
  for (let written = 0; written < SIZE; written += MiB) {
    const chunk = randomBytes(Math.min(MiB, SIZE - written));
    hash.update(chunk);
    if (!out.write(chunk)) await once(out, "drain");
  }
  out.end();
  await once(out, "finish");
  return `sha256:${hash.digest("hex")}`;
}

/**
 * PATCH one chunk with curl (`-T` streams the chunk file with its Content-Length): the client
 * must not be the bottleneck, and curl is much cheaper per byte than a Node client sharing the
 * two cores with the servers.
 */
async function patch(loc: URL, file: string, start: number, end: number): Promise<URL> {
  const chunkFile = `${file}.${start}-${end}`;
  // Cut once, outside the first timing as far as possible (see makeChunks).
  if (!existsSync(chunkFile)) await copyRange(file, chunkFile, start, end);
  const { stdout } = await execFileAsync("curl", [
    "-sS", "-X", "PATCH", "-T", chunkFile, "-o", "/dev/null", "-D", "-",
    "-H", "Expect:", "-H", "Content-Type: application/octet-stream", "-H", `Content-Range: ${start}-${end - 1}`,
    loc.href,
  ], { maxBuffer: 1024 * 1024 });
  const status = /^HTTP\/[\d.]+ (\d+)/m.exec(stdout)?.[1];
  const location = /^location: *(.+?)\r?$/im.exec(stdout)?.[1];
  if (status !== "202" || location === undefined) throw new InternalError(`PATCH ${status ?? "?"}: ${stdout.slice(0, 300)}`);
  return new URL(location, loc);
}

/** The chunk files every upload uses: [k*CHUNK, (k+1)*CHUNK), and the resume test's pieces. */
async function makeChunks(file: string): Promise<void> {
  for (let start = 0; start < SIZE; start += CHUNK) {
    const end = Math.min(SIZE, start + CHUNK);
    await copyRange(file, `${file}.${start}-${end}`, start, end);
  }
}

async function copyRange(file: string, to: string, start: number, end: number): Promise<void> {
  await pipeline(createReadStream(file, { start, end: end - 1, highWaterMark: MiB }), createWriteStream(to));
}

async function startUpload(url: string, repo: string): Promise<URL> {
  const post = await fetch(`${url}/v2/${repo}/blobs/uploads/`, { method: "POST" });
  if (post.status !== 202) throw new InternalError(`POST ${post.status}`);
  return new URL(post.headers.get("location")!, url);
}

async function finish(loc: URL, digest: string): Promise<void> {
  const fin = new URL(loc);
  fin.searchParams.set("digest", digest);
  const put = await fetch(fin, { method: "PUT" });
  if (put.status !== 201) throw new InternalError(`PUT ${put.status} ${await put.text()}`);
}

/** Chunked upload of the whole file; returns seconds. */
async function upload(url: string, repo: string, file: string, digest: string): Promise<number> {
  const t0 = performance.now();
  let loc = await startUpload(url, repo);
  for (let start = 0; start < SIZE; start += CHUNK) loc = await patch(loc, file, start, Math.min(SIZE, start + CHUNK));
  await finish(loc, digest);
  return (performance.now() - t0) / 1000;
}

/** GET the blob with curl into /dev/null; returns seconds. */
async function download(url: string, repo: string, digest: string): Promise<number> {
  const t0 = performance.now();
  const { stdout } = await execFileAsync("curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download}", `${url}/v2/${repo}/blobs/${digest}`]);
  const sec = (performance.now() - t0) / 1000;
  if (stdout.trim() !== `200 ${SIZE}`) throw new InternalError(`GET answered ${stdout}`);
  return sec;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const mbps = (sec: number): number => SIZE / 1e6 / sec;

async function measure(name: string, server: Server, file: string, digest: string): Promise<{ up: number; down: number }> {
  const ups: number[] = [];
  const downs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const repo = `bench/${name.replace(/[^a-z0-9]/g, "")}${i}`;
    ups.push(await upload(server.url, repo, file, digest));
    downs.push(await download(server.url, repo, digest));
  }
  const up = mbps(median(ups));
  const down = mbps(median(downs));
  console.log(`${name.padEnd(28)} chunked upload ${up.toFixed(0).padStart(5)} MB/s   blob GET ${down.toFixed(0).padStart(5)} MB/s`);
  return { up, down };
}

/**
 * Upload all but the last chunk, kill the server (SIGKILL), start a new one on the same
 * directory, ask the session's status (every acknowledged byte: the registry flushes the store's
 * write batch before each 202, so "lost" must print 0) and time the remaining PATCH + PUT: the reopen rebuilds the
 * hash of everything before, by re-reading it (node:crypto) or from a checkpoint (hash-wasm).
 */
async function resumeCost(
  dir: string,
  mode: string,
  file: string,
  digest: string,
): Promise<{ reopen: number; rest: number; lost: number; offset: number }> {
  let server = await startFerry(dir, mode);
  let loc = await startUpload(server.url, `resume/${mode.replace(/[^a-z]/g, "")}`);
  const last = SIZE - CHUNK;
  for (let start = 0; start < last; start += CHUNK) loc = await patch(loc, file, start, Math.min(last, start + CHUNK));
  await server.stop();
  server = await startFerry(dir, mode);
  const path = new URL(`${loc.pathname}${loc.search}`, server.url);
  const st = await fetch(path);
  const range = /^0-(\d+)$/.exec(st.headers.get("range") ?? "");
  if (st.status !== 204 || range === null) throw new InternalError(`upload status ${st.status}`);
  const offset = Number(range[1]) + 1;
  await copyRange(file, `${file}.${offset}-${offset + 1}`, offset, offset + 1);
  await copyRange(file, `${file}.${offset + 1}-${SIZE}`, offset + 1, SIZE);
  // A one-byte PATCH isolates the reopen: the store rebuilds the running hash of `offset` bytes.
  const t0 = performance.now();
  let next = await patch(path, file, offset, offset + 1);
  const t1 = performance.now();
  next = await patch(next, file, offset + 1, SIZE);
  await finish(next, digest);
  const t2 = performance.now();
  await server.stop();
  return { reopen: (t1 - t0) / 1000, rest: (t2 - t1) / 1000, lost: last - offset, offset };
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), "ferry-bench-registry-"));
  const stops: Array<() => Promise<void>> = [];
  try {
    console.log(`blob ${SIZE / MiB} MiB, PATCH chunks of ${CHUNK / MiB} MiB, median of ${RUNS} runs, ${new Date().toISOString()}`);
    const file = join(work, "blob");
    const digest = await makeSource(file);
    await makeChunks(file);

    if (process.env.BENCH_ONLY !== "resume") await throughput(work, file, digest, stops);
    for (const mode of ["node", "hash-wasm"]) {
      const runs: Array<Awaited<ReturnType<typeof resumeCost>>> = [];
      for (let i = 0; i < RUNS; i++) {
        runs.push(await resumeCost(join(work, `resume-${mode}-${i}`), mode, file, digest));
        await rm(join(work, `resume-${mode}-${i}`), { recursive: true, force: true });
      }
      const ms = (xs: number[]): string => `${(median(xs) * 1000).toFixed(0)} ms`;
      const r = runs[0]!;
      console.log(
        `resume after SIGKILL (${mode.padEnd(9)}): reopen at ~${(r.offset / MiB).toFixed(0)} MiB (1-byte PATCH) ${ms(runs.map((x) => x.reopen))}; ` +
          `rest ~${((SIZE - r.offset) / MiB).toFixed(0)} MiB + PUT ${ms(runs.map((x) => x.rest))}; ` +
          `acknowledged bytes not in the file: ${runs.map((x) => x.lost).join(", ")}`,
      );
    }
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    await rm(work, { recursive: true, force: true });
  }
}

async function throughput(work: string, file: string, digest: string, stops: Array<() => Promise<void>>): Promise<void> {
  const { startDockerRegistry, hasTool } = await import("../packages/testkit/src/index.ts");
  const ferry = await startFerry(join(work, "ferry-node"), "node");
  stops.push(() => ferry.stop());
  const f = await measure("ferry (store-fs, node:crypto)", ferry, file, digest);
  const ferryWasm = await startFerry(join(work, "ferry-wasm"), "hash-wasm");
  stops.push(() => ferryWasm.stop());
  const fw = await measure("ferry (store-fs, hash-wasm)", ferryWasm, file, digest);
  if (!hasTool("docker-registry")) {
    console.log("docker-registry not installed: no ratio");
    return;
  }
  const docker = await startDockerRegistry({ logLevel: "error", tmpDir: work });
  stops.push(() => docker.stop());
  const d = await measure("docker-registry 2.8", { url: docker.url, stop: () => docker.stop() }, file, digest);
  console.log(`ratio ferry/docker-registry: upload ${(f.up / d.up).toFixed(2)}, GET ${(f.down / d.down).toFixed(2)}`);
  console.log(`ratio ferry(hash-wasm)/docker-registry: upload ${(fw.up / d.up).toFixed(2)}, GET ${(fw.down / d.down).toFixed(2)}`);
}

const serveAt = process.argv.indexOf("--serve");
if (serveAt >= 0) {
  await serve(process.argv[serveAt + 1]!, process.argv[serveAt + 2] ?? "node");
} else {
  await main();
}
