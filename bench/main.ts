/**
 * `pnpm bench [--quick] [--case N]… [--runs N] [--cpu-prof DIR] [--keep]`: ferry against its peers
 * on a real docker-registry and on ferry's embedded registry (issue 6).
 *
 * Cases: 1 pull 8 × 128 MiB gzip layers vs skopeo; 2 push of that image vs skopeo; 3 pull of one
 * 1 GiB layer vs `curl -o file` (and skopeo); 4 an index of 1000 small blobs, blobs/s; 5 resume
 * after a kill at 50 %, bytes re-sent vs missing; 6 cases 1, 3 and 4 from the embedded registry.
 * `--quick` shrinks the images (8 × 16 MiB, 128 MiB, 200 blobs) and runs 2 rounds instead of 3.
 *
 * ferry runs as a separate process (bench/worker.ts, bundled with esbuild) under `/usr/bin/time`,
 * like the peers, so CPU time and peak RSS are the whole process's. Results go to
 * bench/results/latest.{json,md} for a full run, bench/results/partial.{json,md} otherwise.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { pushImage, startDockerRegistry, type RunningRegistry } from "../packages/testkit/src/index.ts";
import { FERRY_NODE_FLAGS } from "../packages/cli/src/node-flags.ts";
import { bundleEntry } from "./lib/bundle.ts";
import {
  pullImageCase,
  pushCase,
  resumeCase,
  singleBlobCase,
  smallBlobsCase,
  type BenchContext,
  type CaseReport,
  type Registry,
} from "./lib/cases.ts";
import { buildLayered, buildSmallBlobs, type BenchImage } from "./lib/images.ts";
import { measureLimits } from "./lib/limits.ts";
import { writeReport, type BenchReport } from "./lib/report.ts";

interface Options {
  quick: boolean;
  /** Case labels: "1"…"6", or one of 6's parts ("6a", "6b", "6c"). */
  cases: Set<string>;
  rounds: number;
  cpuProf?: string;
  keep: boolean;
}

const ALL_CASES = ["1", "2", "3", "4", "5", "6"];
const EMBEDDED_PARTS = ["6a", "6b", "6c"];

function parseArgs(argv: string[]): Options {
  const o: Options = { quick: false, cases: new Set(), rounds: 0, keep: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new RangeError(`${a} needs a value`);
      return v;
    };
    if (a === "--") continue;
    else if (a === "--quick") o.quick = true;
    else if (a === "--keep") o.keep = true;
    else if (a === "--case") for (const n of next().split(",")) o.cases.add(n.trim());
    else if (a === "--runs") o.rounds = Number(next());
    else if (a === "--cpu-prof") o.cpuProf = next();
    else if (a === "--help" || a === "-h") {
      process.stdout.write(
        "pnpm bench [--quick] [--case N[,N…]]… [--runs N] [--cpu-prof DIR] [--keep]\n" +
          "  cases: 1 pull 8 layers, 2 push, 3 single 1 GiB blob, 4 1000 small blobs, 5 resume,\n" +
          "         6 pulls from the embedded registry (or one part of it: 6a as 1, 6b as 3, 6c as 4)\n",
      );
      process.exit(0);
    } else throw new RangeError(`unknown argument ${a}`);
  }
  for (const c of o.cases) if (!ALL_CASES.includes(c) && !EMBEDDED_PARTS.includes(c)) throw new RangeError(`no case ${c}`);
  if (o.cases.size === 0) for (const c of ALL_CASES) o.cases.add(c);
  if (!(o.rounds >= 1)) o.rounds = o.quick ? 2 : 3;
  return o;
}

const log = (s: string): void => {
  process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${s}\n`);
};

function version(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  return (r.stdout || r.stderr || "").split("\n")[0]!.trim();
}

async function startEmbedded(command: string[], dir: string): Promise<{ reg: Registry; child: ChildProcess }> {
  const child = spawn(command[0]!, [...command.slice(1), dir], { stdio: ["ignore", "pipe", "inherit"] });
  const [line] = (await once(child.stdout!, "data")) as [Buffer];
  const { url } = JSON.parse(line.toString().split("\n")[0]!) as { url: string };
  return { reg: { kind: "embedded", url, host: new URL(url).host }, child };
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const sdkDefaults = process.env.BENCH_SDK_DEFAULTS === "1";
  // has(6) is true when any part of case 6 runs; part(x) when that part does.
  const has = (n: number): boolean => opts.cases.has(String(n)) || (n === 6 && EMBEDDED_PARTS.some((p) => opts.cases.has(p)));
  const part = (p: string): boolean => opts.cases.has("6") || opts.cases.has(p);
  const here = dirname(fileURLToPath(import.meta.url));
  const started = new Date();
  const t0 = performance.now();
  const sizes = opts.quick ? { layerMiB: 16, singleMiB: 128, small: 200 } : { layerMiB: 128, singleMiB: 1024, small: 1000 };
  const scratch = await mkdtemp(join(tmpdir(), "ferry-bench-"));
  let docker: RunningRegistry | undefined;
  let embedded: ChildProcess | undefined;
  log(`ferry bench ${opts.quick ? "--quick " : ""}cases ${[...opts.cases].join(",")}, ${opts.rounds} rounds, scratch ${scratch}`);
  try {
    const bundles = join(scratch, "bundles");
    await mkdir(bundles);
    // ferry runs as the `ferry` executable runs: its node flags (V8 memory settings), its bundle
    // compiled from a V8 code cache, WebAssembly on the baseline compiler (set on the command
    // line here, where bin/ferry.js sets it before compiling: the cache is only valid under the
    // flags it was made with). BENCH_SDK_DEFAULTS=1 runs an embedding process at Node's defaults.
    const worker = await bundleEntry(join(here, "worker.ts"), bundles, "worker", { codeCache: !sdkDefaults });
    if (!sdkDefaults) worker.splice(1, 0, ...FERRY_NODE_FLAGS, "--liftoff-only");
    const getBlobs = await bundleEntry(join(here, "get-blobs.ts"), bundles, "get-blobs");
    const zeroCopyGet = await bundleEntry(join(here, "zero-copy-get.ts"), bundles, "zero-copy-get");
    if (opts.cpuProf) {
      await mkdir(opts.cpuProf, { recursive: true });
      worker.splice(1, 0, "--cpu-prof", `--cpu-prof-dir=${opts.cpuProf}`);
    }

    docker = await startDockerRegistry({ logLevel: "error", tmpDir: scratch });
    const dreg: Registry = { kind: "docker-registry", host: docker.host, url: docker.url };
    let ereg: Registry | undefined;
    if (has(6)) {
      const server = await bundleEntry(join(here, "embedded-server.ts"), bundles, "embedded-server");
      const e = await startEmbedded(server, join(scratch, "embedded"));
      embedded = e.child;
      ereg = e.reg;
    }

    // Images: built once with random content, pushed with skopeo to each registry in use.
    const images: { multi?: BenchImage; single?: BenchImage; small?: BenchImage } = {};
    const targets = [dreg, ...(ereg ? [ereg] : [])];
    const build = async (key: keyof typeof images, make: (dir: string) => Promise<BenchImage>): Promise<BenchImage> => {
      const t = performance.now();
      const img = await make(join(scratch, `image-${key}`));
      for (const reg of targets) await pushImage(img.dir, img.name, reg.host, `${key}:bench`);
      log(`image ${key}: ${img.blobs} blobs, ${(img.bytes / 2 ** 20).toFixed(0)} MiB, built and pushed in ${((performance.now() - t) / 1000).toFixed(1)} s`);
      images[key] = img;
      return img;
    };
    if (has(1) || has(2) || has(5) || part("6a")) await build("multi", (d) => buildLayered(d, 8, sizes.layerMiB));
    if (has(3) || part("6b")) await build("single", (d) => buildLayered(d, 1, sizes.singleMiB));
    if (has(4) || part("6c")) await build("small", (d) => buildSmallBlobs(d, sizes.small));

    // The curl/dd/sha256 limits run on the biggest blob at hand.
    const probe = images.single ?? images.multi ?? images.small!;
    const probeRepo = images.single ? "single" : images.multi ? "multi" : "small";
    const limits = await measureLimits(scratch, `${docker.url}/v2/${probeRepo}/blobs/${probe.biggest.digest}`, probe.biggest.size, opts.rounds, log);
    const ctx: BenchContext = { scratch, worker, getBlobs, zeroCopyGet, rounds: opts.rounds, log, limits };

    const cases: CaseReport[] = [];
    const run = async (label: string, fn: () => Promise<CaseReport>): Promise<void> => {
      const t = performance.now();
      log(`case ${label}`);
      const c = await fn();
      cases.push(c);
      const ferry = c.contenders[0]!.median;
      log(
        `case ${label}: ferry ${ferry.mbps.toFixed(0)} MB/s ${ferry.blobsPerS.toFixed(0)} blobs/s; ` +
          `${Object.entries(c.ratios).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(", ")}; ` +
          `${c.targets.map((x) => `${x.met ? "met" : "MISSED"}: ${x.what} ${x.value.toFixed(2)}`).join("; ")} ` +
          `(${((performance.now() - t) / 1000).toFixed(0)} s)`,
      );
    };
    if (has(1)) await run("1", () => pullImageCase(ctx, "1", dreg, images.multi!, "multi", 2.0));
    if (has(2)) await run("2", () => pushCase(ctx, dreg, images.multi!));
    if (has(3)) await run("3", () => singleBlobCase(ctx, "3", dreg, images.single!, "single"));
    if (has(4)) await run("4", () => smallBlobsCase(ctx, "4", dreg, images.small!, "small"));
    if (has(5)) await run("5", () => resumeCase(ctx, dreg, images.multi!, "multi"));
    if (has(6) && ereg) {
      if (part("6a")) await run("6a", () => pullImageCase(ctx, "6a", ereg, images.multi!, "multi", 2.0));
      if (part("6b")) await run("6b", () => singleBlobCase(ctx, "6b", ereg, images.single!, "single"));
      if (part("6c")) await run("6c", () => smallBlobsCase(ctx, "6c", ereg, images.small!, "small"));
    }

    const report: BenchReport = {
      startedAt: started.toISOString(),
      durationS: (performance.now() - t0) / 1000,
      quick: opts.quick,
      rounds: opts.rounds,
      machine: {
        cpus: cpus().length,
        loadavgAtStart: loadavg(),
        node: process.version,
        skopeo: version("skopeo", ["--version"]),
        registry: version("docker-registry", ["--version"]),
      },
      ferryProcess: sdkDefaults
        ? "Node defaults (BENCH_SDK_DEFAULTS=1)"
        : `as the ferry executable: node ${FERRY_NODE_FLAGS.join(" ")}, useBaselineWasm(), bundle compiled from a V8 code cache`,
      limits,
      cases,
    };
    const full = !opts.quick && ALL_CASES.every((c) => opts.cases.has(c));
    const files = await writeReport(join(here, "results"), full ? "latest" : "partial", report);
    log(`done in ${report.durationS.toFixed(0)} s; wrote ${files.join(", ")}`);
  } finally {
    embedded?.kill("SIGKILL");
    await docker?.stop();
    if (!opts.keep) await rm(scratch, { recursive: true, force: true });
  }
}

await main();
