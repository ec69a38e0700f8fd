/**
 * The benchmark cases of issue 6. Each returns a {@link CaseReport}; ferry always runs as its own
 * process (the bundled worker) so its CPU time and peak RSS are measured like the peers'.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { startFaultProxy } from "../../packages/testkit/src/index.ts";
import { contest, figures, median, summarise, type Contender, type ContenderResult } from "./contest.ts";
import type { BenchImage } from "./images.ts";
import { measure, type Measured } from "./measure.ts";
import { storedBytes } from "./stored-bytes.ts";

export interface Target {
  /** What is compared, e.g. "pull MB/s ferry / skopeo". */
  what: string;
  value: number;
  goal: number;
  /** "min": value must be at least goal; "max": at most. */
  kind: "min" | "max";
  met: boolean;
}

export interface CaseReport {
  id: string;
  title: string;
  registry: "docker-registry" | "embedded";
  bytes: number;
  blobs: number;
  contenders: ContenderResult[];
  /** Ratios of ferry's median to each other contender's (MB/s; >1 means ferry is faster). */
  ratios: Record<string, number>;
  /** ferry's median MB/s over each machine limit measured in this run. */
  ofLimits: Record<string, number>;
  targets: Target[];
  /** Case-specific figures (resume byte counts). */
  extra?: Record<string, number>;
}

export interface Limits {
  /** `curl -o FILE` of one blob from docker-registry, MB/s. */
  curlFileMBps: number;
  /** `curl -o /dev/null` of the same blob, MB/s. */
  curlNullMBps: number;
  /** `dd` of the same size with `conv=fsync`, MB/s. */
  ddFsyncMBps: number;
  /** node:crypto sha256 over the same size in 1 MiB chunks, MB/s. */
  sha256MBps: number;
  /** Size the limits were measured on. */
  bytes: number;
}

export interface BenchContext {
  scratch: string;
  /** Command prefix running the ferry worker. */
  worker: string[];
  /** Command prefix running bench/get-blobs.ts (plain GETs: the registry's ceiling). */
  getBlobs: string[];
  /** Command prefix running bench/zero-copy-get.ts (a copy-free blob GET: a ceiling for ferry's path). */
  zeroCopyGet: string[];
  rounds: number;
  log: (s: string) => void;
  limits: Limits;
}

export interface Registry {
  kind: "docker-registry" | "embedded";
  host: string;
  url: string;
}

const BLOB_INFO_CACHE = "/var/lib/containers/cache/blob-info-cache-v1.boltdb";

/** skopeo remembers blob locations and mounts instead of uploading: forget them before each run. */
async function forgetSkopeoCache(): Promise<void> {
  await rm(BLOB_INFO_CACHE, { force: true });
}

async function fresh(ctx: BenchContext, prefix: string): Promise<string> {
  return mkdtemp(join(ctx.scratch, `${prefix}-`));
}

/** Scratch dirs of many small files, removed at the end of their case (see {@link inFresh}). */
const deferred: string[] = [];

/**
 * Run `fn` on a new scratch dir and remove it afterwards (outside the timed part). With `defer`
 * the removal waits for {@link removeDeferred} at the end of the case: ext4 skips inodes freed
 * in the last ~30 s when it allocates new ones (`recently_deleted`, reading inode tables), so
 * deleting the previous run's 1000 files right before a run cost that run ~1 s of system CPU
 * (1000 small blobs: 1.4–1.7 s vs 0.55 s sys), a cost no real pull into a store pays.
 */
async function inFresh(ctx: BenchContext, prefix: string, fn: (dir: string) => Promise<Measured>, defer = false): Promise<Measured> {
  const dir = await fresh(ctx, prefix);
  try {
    return await fn(dir);
  } finally {
    if (defer) deferred.push(dir);
    else await rm(dir, { recursive: true, force: true });
  }
}

async function removeDeferred(): Promise<void> {
  for (const dir of deferred.splice(0)) await rm(dir, { recursive: true, force: true });
}

const skopeoCopy = (src: string, dst: string): string[] => [
  "skopeo",
  "--insecure-policy",
  "copy",
  "-q",
  "--src-tls-verify=false",
  "--dest-tls-verify=false",
  src,
  dst,
];

/** Run the ferry worker; its last stdout line carries the operation's own elapsed time. */
async function runFerry(ctx: BenchContext, args: string[]): Promise<Measured> {
  const m = await measure([...ctx.worker, ...args], ctx.scratch);
  // BENCH_MEM=1: the worker's memoryUsage() peaks, shown with the run.
  const peaks = /memory peaks \(MB\):.*/.exec(m.stderr)?.[0];
  if (peaks) process.stdout.write(`      ${peaks}\n`);
  const last = m.stdout.trim().split("\n").at(-1) ?? "";
  try {
    const elapsedMs = (JSON.parse(last) as { totals?: { elapsedMs?: number } }).totals?.elapsedMs;
    if (typeof elapsedMs === "number" && elapsedMs > 0) m.innerS = elapsedMs / 1000;
  } catch {
    // no result line: keep the outside figures only
  }
  return m;
}

export function ferryPull(ctx: BenchContext, ref: string, deferRemoval = false): Contender {
  return { name: "ferry", run: () => inFresh(ctx, "ferry-pull", (dir) => runFerry(ctx, ["pull", ref, join(dir, "store")]), deferRemoval) };
}

export function skopeoPull(ctx: BenchContext, ref: string, deferRemoval = false): Contender {
  return {
    name: "skopeo",
    run: () =>
      inFresh(ctx, "skopeo-pull", async (dir) => {
        await forgetSkopeoCache();
        return measure(skopeoCopy(`docker://${ref}`, `oci:${join(dir, "layout")}:bench`), ctx.scratch);
      }, deferRemoval),
  };
}

function ratiosOf(results: ContenderResult[], key: "mbps" | "blobsPerS"): Record<string, number> {
  const ferry = results.find((r) => r.name === "ferry")!;
  const out: Record<string, number> = {};
  for (const r of results) if (r !== ferry) out[`ferry/${r.name}`] = ferry.median[key] / r.median[key];
  return out;
}

function ofLimits(ctx: BenchContext, ferryMBps: number): Record<string, number> {
  const l = ctx.limits;
  return {
    "ferry/curl-file": ferryMBps / l.curlFileMBps,
    "ferry/curl-null": ferryMBps / l.curlNullMBps,
    "ferry/dd-fsync": ferryMBps / l.ddFsyncMBps,
    "ferry/sha256": ferryMBps / l.sha256MBps,
  };
}

function target(what: string, value: number, goal: number, kind: "min" | "max"): Target {
  return { what, value, goal, kind, met: kind === "min" ? value >= goal : value <= goal };
}

const RSS_GOAL_MB = 100;

function rssTarget(results: ContenderResult[]): Target {
  const ferry = results.find((r) => r.name === "ferry")!;
  return target("ferry peak RSS (MB, worst run)", Math.max(...ferry.runs.map((r) => r.peakRssMB)), RSS_GOAL_MB, "max");
}

/**
 * The report of an MB/s case (1, 2, 3, 6a, 6b): ratios by throughput, ferry's share of the machine
 * limits, and one target on ferry's ratio to `peer` plus the RSS target.
 */
function throughputReport(
  ctx: BenchContext,
  c: { id: string; title: string; reg: Registry; image: BenchImage; results: ContenderResult[] },
  goal: { what: string; peer: string; value: number },
): CaseReport {
  const ratios = ratiosOf(c.results, "mbps");
  return {
    id: c.id,
    title: c.title,
    registry: c.reg.kind,
    bytes: c.image.bytes,
    blobs: c.image.blobs,
    contenders: c.results,
    ratios,
    ofLimits: ofLimits(ctx, c.results[0]!.median.mbps),
    targets: [target(goal.what, ratios[`ferry/${goal.peer}`]!, goal.value, "min"), rssTarget(c.results)],
  };
}

/** Cases 1 and 6a: a multi-layer image pulled into a fresh store, ferry vs skopeo. */
export async function pullImageCase(ctx: BenchContext, id: string, reg: Registry, image: BenchImage, repo: string, goal: number): Promise<CaseReport> {
  const ref = `${reg.host}/${repo}:bench`;
  const results = await contest(`[${id}]`, [ferryPull(ctx, ref), skopeoPull(ctx, ref)], ctx.rounds, image.bytes, image.blobs, ctx.log);
  const title = `pull ${image.blobs - 2} × ${(image.biggest.size / 2 ** 20).toFixed(0)} MiB gzip layers from ${reg.kind}`;
  return throughputReport(ctx, { id, title, reg, image, results }, { what: "pull MB/s ferry / skopeo", peer: "skopeo", value: goal });
}

/** Case 2: push the multi-layer layout to an empty repository, ferry vs skopeo. */
export async function pushCase(ctx: BenchContext, reg: Registry, image: BenchImage): Promise<CaseReport> {
  const tag = Date.now().toString(36);
  const contenders: Contender[] = [
    {
      name: "ferry",
      run: (r) => runFerry(ctx, ["push", image.dir, image.name, `${reg.host}/push-ferry-${tag}-${r}:bench`]),
    },
    {
      name: "skopeo",
      run: async (r) => {
        await forgetSkopeoCache();
        return measure(skopeoCopy(`oci:${image.dir}:${image.name}`, `docker://${reg.host}/push-skopeo-${tag}-${r}:bench`), ctx.scratch);
      },
    },
  ];
  const results = await contest("[2]", contenders, ctx.rounds, image.bytes, image.blobs, ctx.log);
  const title = `push ${image.blobs - 2} layers (${(image.bytes / 2 ** 20).toFixed(0)} MiB) from an OCI layout to an empty repository of ${reg.kind}`;
  return throughputReport(ctx, { id: "2", title, reg, image, results }, { what: "push MB/s ferry / skopeo", peer: "skopeo", value: 1.5 });
}

/** Cases 3 and 6b: one big layer, ferry vs `curl -o file` of that layer (and skopeo for context). */
export async function singleBlobCase(ctx: BenchContext, id: string, reg: Registry, image: BenchImage, repo: string): Promise<CaseReport> {
  const ref = `${reg.host}/${repo}:bench`;
  const url = `${reg.url}/v2/${repo}/blobs/${image.biggest.digest}`;
  const curl: Contender = {
    name: "curl-file",
    run: () => inFresh(ctx, "curl", (dir) => measure(["curl", "-s", "-f", "-o", join(dir, "blob"), url], ctx.scratch)),
  };
  const zeroCopy: Contender = {
    name: "zero-copy-get",
    run: () => inFresh(ctx, "zero-copy", (dir) => measure([...ctx.zeroCopyGet, url, join(dir, "blob")], ctx.scratch)),
  };
  const results = await contest(`[${id}]`, [ferryPull(ctx, ref), curl, skopeoPull(ctx, ref), zeroCopy], ctx.rounds, image.bytes, image.blobs, ctx.log);
  const title = `pull one ${(image.biggest.size / 2 ** 20).toFixed(0)} MiB single-layer image from ${reg.kind}`;
  return throughputReport(ctx, { id, title, reg, image, results }, { what: "single blob MB/s ferry / curl -o file", peer: "curl-file", value: 1.5 });
}

/** Cases 4 and 6c: an index over many small blobs; blobs per second. */
export async function smallBlobsCase(ctx: BenchContext, id: string, reg: Registry, image: BenchImage, repo: string): Promise<CaseReport> {
  const ref = `${reg.host}/${repo}:bench`;
  const get: Contender = {
    name: "http-get×8",
    run: () => measure([...ctx.getBlobs, reg.url, repo, image.dir, "8"], ctx.scratch),
  };
  // The same pull into store-memory: what the transport and the walk cost without the filesystem store.
  const memory: Contender = { name: "ferry→memory", run: () => runFerry(ctx, ["pull", ref, "unused", "--memory"]) };
  const contenders = [ferryPull(ctx, ref, true), skopeoPull(ctx, ref, true), get, memory];
  const results = await contest(`[${id}]`, contenders, ctx.rounds, image.bytes, image.blobs, ctx.log).finally(removeDeferred);
  const ratios = ratiosOf(results, "blobsPerS");
  const ferry = results[0]!;
  return {
    id,
    title: `pull an index of ${image.blobs - 3} small blobs (4–64 KiB) from ${reg.kind}`,
    registry: reg.kind,
    bytes: image.bytes,
    blobs: image.blobs,
    contenders: results,
    ratios,
    ofLimits: {},
    targets: [target("ferry blobs/s", ferry.median.blobsPerS, 1000, "min"), rssTarget(results)],
  };
}

/**
 * Case 5: start a pull, SIGKILL it once half the bytes are stored, then pull again through a
 * counting proxy: bytes re-sent over the wire versus bytes that were missing.
 */
export async function resumeCase(ctx: BenchContext, reg: Registry, image: BenchImage, repo: string): Promise<CaseReport> {
  const rounds = Math.min(ctx.rounds, 3);
  const runs = [];
  const details: Array<{ present: number; missing: number; resent: number }> = [];
  for (let r = 0; r < rounds; r++) {
    const dir = await fresh(ctx, "resume");
    const store = join(dir, "store");
    const proxy = await startFaultProxy({ target: reg.url, rules: [] });
    try {
      const killed = await measure([...ctx.worker, "pull", `${reg.host}/${repo}:bench`, store, "--progress"], ctx.scratch, {
        allowFailure: true,
        onLine: (line) => {
          // The event's total grows while the walk discovers blobs: compare with the image's size.
          const [p, done] = line.split(" ");
          return p === "P" && Number(done) >= image.bytes / 2;
        },
      });
      if (killed.code === 0) ctx.log("  [5] warning: the pull finished before it could be killed");
      const present = await storedBytes(store, image);
      const missing = image.bytes - present;
      const again = await measure([...ctx.worker, "pull", `${proxy.host}/${repo}:bench`, store], ctx.scratch);
      const resent = proxy.requests.filter((q) => q.method === "GET").reduce((s, q) => s + q.bytes, 0);
      if (process.env.BENCH_DEBUG) for (const q of proxy.requests) ctx.log(`    ${q.method} ${q.path} ${q.status} ${q.bytes}`);
      details.push({ present, missing, resent });
      runs.push(figures(again, missing, image.blobs));
      ctx.log(
        `  [5] resume run ${r + 1}/${rounds}: killed at ${((present / image.bytes) * 100).toFixed(0)}% stored, missing ${missing} B, ` +
          `re-sent ${resent} B (${(resent / missing).toFixed(3)}×), re-run ${again.wallS.toFixed(2)} s`,
      );
    } finally {
      await proxy.stop();
      await rm(dir, { recursive: true, force: true });
    }
  }
  const ratio = median(details.map((d) => d.resent / d.missing));
  const results = [summarise("ferry", runs)];
  return {
    id: "5",
    title: `resume: pull of ${(image.bytes / 2 ** 20).toFixed(0)} MiB killed at 50%, then re-run`,
    registry: reg.kind,
    bytes: image.bytes,
    blobs: image.blobs,
    contenders: results,
    ratios: {},
    ofLimits: {},
    targets: [target("bytes re-sent / bytes missing", ratio, 1.05, "max"), rssTarget(results)],
    extra: {
      presentBytes: median(details.map((d) => d.present)),
      missingBytes: median(details.map((d) => d.missing)),
      resentBytes: median(details.map((d) => d.resent)),
      resentOverMissing: ratio,
    },
  };
}
