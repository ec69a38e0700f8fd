/**
 * The main job (`npm run demo`): start a local registry, seed a generated two-platform image,
 * pull it with live progress into a fresh store, print a summary. No internet needed.
 *
 *   pnpm exec tsx examples/demo.ts [--docker-registry] [--platforms linux/amd64,linux/arm64]
 *                                  [--layers 3] [--size 8] [--store DIR] [--keep]
 *
 * The registry is ferry's embedded `@ferry/registry` (in memory) unless `--docker-registry`
 * asks for the real distribution registry (when it is not installed, the embedded one is used). The pull goes into a fresh temporary store (an OCI
 * layout), removed at the end unless `--keep` or `--store DIR` is given.
 */
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { childrenOf, pull, readBlob, type Descriptor } from "@ferry/core";
import { formatBytes, formatDuration, formatRate, renderProgress } from "@ferry/cli";
import { createRegistryResolver, useBaselineWasm } from "@ferry/fetcher";
import { openFsStore } from "@ferry/store-fs";
import { hasTool } from "@ferry/testkit";
import { flag, isMain, seedImage, startLocalRegistry } from "./lib/setup.ts";

export interface DemoOptions {
  /** Use the real `docker-registry` instead of the embedded one. Default false. */
  dockerRegistry?: boolean;
  /** Default `["linux/amd64", "linux/arm64"]`. */
  platforms?: string[];
  /** Layers per platform. Default 3. */
  layers?: number;
  /** MiB of random data per layer. Default 8. */
  sizeMiB?: number;
  /** Pull into this directory instead of a fresh temp dir (kept). */
  store?: string;
  /** Keep the temp store. Default false. */
  keep?: boolean;
  /** Progress style: bars on a terminal, else plain lines. */
  progress?: "tty" | "plain" | "none";
  log?: (line: string) => void;
  /** Cancels the seeding and the pull. */
  signal?: AbortSignal;
}

export interface DemoResult {
  reference: string;
  root: Descriptor;
  storeDir: string;
  bytes: number;
  blobs: number;
  elapsedMs: number;
}

export async function demo(options: DemoOptions = {}): Promise<DemoResult> {
  const log = options.log ?? ((l: string) => console.log(l));
  const platforms = options.platforms ?? ["linux/amd64", "linux/arm64"];
  const layers = options.layers ?? 3;
  const sizeMiB = options.sizeMiB ?? 8;

  let dockerRegistry = options.dockerRegistry ?? false;
  if (dockerRegistry && !hasTool("docker-registry")) {
    log("docker-registry is not installed (apt-get install docker-registry): using the embedded registry");
    dockerRegistry = false;
  }
  const registry = await startLocalRegistry({ dockerRegistry });
  const tempStore = options.store === undefined ? await mkdtemp(join(tmpdir(), "ferry-demo-")) : undefined;
  const storeDir = options.store !== undefined ? resolve(options.store) : join(tempStore as string, "store");
  const resolver = createRegistryResolver();
  try {
    log(`registry: ${registry.kind} at http://${registry.host}`);
    const t0 = Date.now();
    const seeded = await seedImage(registry.host, "demo/app:1", { platforms, layers, layerSize: sizeMiB * 1024 * 1024 });
    log(`seeded ${seeded.reference} (${platforms.length} platforms × ${layers} layers × ${sizeMiB} MiB) in ${formatDuration(Date.now() - t0)}`);
    log(`pulling into ${storeDir}${tempStore ? " (fresh temp store)" : ""}`);

    const store = await openFsStore(storeDir);
    const op = pull(seeded.reference, { resolver, store, platform: "all", ...(options.signal ? { signal: options.signal } : {}) });
    const mode = options.progress ?? (process.stderr.isTTY ? "tty" : "plain");
    const rendering = renderProgress(op.status$, { mode, out: process.stderr });
    let result;
    try {
      result = await op.done;
      rendering.stop("done");
    } finally {
      rendering.stop("failed");
    }

    const t = result.totals;
    log("");
    log(`pulled ${seeded.reference}`);
    log(`  root        ${result.root.digest} (${result.root.mediaType})`);
    for (const m of await childrenOf(result.root, await readBlob(store, result.root))) {
      const p = m.platform ? `${m.platform.os}/${m.platform.architecture}` : "manifest";
      const layerSizes = childrenOf(m, await readBlob(store, m)).reduce((a, d) => a + d.size, 0);
      log(`  ${p.padEnd(11)} ${m.digest} (${formatBytes(layerSizes)} in config + layers)`);
    }
    const secs = Math.max(t.elapsedMs, 1) / 1000;
    log(`  blobs       ${t.blobsDone} (${t.blobsExisting} already present)`);
    log(`  bytes       ${formatBytes(t.bytesTransferred)} transferred, ${formatBytes(t.bytesTotal)} in the graph`);
    log(`  time        ${formatDuration(t.elapsedMs)}  →  ${formatRate(t.bytesTransferred / secs)}`);
    log(`  store       ${storeDir} (${(await readdir(join(storeDir, "blobs", "sha256"))).length} blobs)`);
    return { reference: seeded.reference, root: result.root, storeDir, bytes: t.bytesTransferred, blobs: t.blobsDone, elapsedMs: t.elapsedMs };
  } finally {
    await resolver.close();
    await registry.close();
    if (tempStore !== undefined && !options.keep) await rm(tempStore, { recursive: true, force: true });
    else if (tempStore !== undefined) log(`kept ${storeDir}`);
  }
}

if (isMain(import.meta.url)) {
  const args = process.argv.slice(2);
  if (args.includes("--help") || args.includes("-h")) {
    console.log("usage: tsx examples/demo.ts [--docker-registry] [--platforms a,b] [--layers N] [--size MiB] [--store DIR] [--keep]");
    process.exit(0);
  }
  const num = (name: string): number | undefined => {
    const v = flag(args, name);
    return v === undefined ? undefined : Number(v);
  };
  const platforms = flag(args, "--platforms")?.split(",");
  const store = flag(args, "--store");
  // This process exists to transfer: keep undici's parser off V8's optimizing compiler, as the
  // `ferry` command does (~30 MB less peak RSS, see @ferry/fetcher's "Memory of the process").
  useBaselineWasm();
  const layers = num("--layers");
  const sizeMiB = num("--size");
  // Ctrl-C cancels the pull and still stops the registry and removes the temp store.
  const controller = new AbortController();
  process.once("SIGINT", () => controller.abort());
  demo({
    signal: controller.signal,
    dockerRegistry: args.includes("--docker-registry"),
    keep: args.includes("--keep"),
    ...(platforms ? { platforms } : {}),
    ...(store !== undefined ? { store } : {}),
    ...(layers !== undefined ? { layers } : {}),
    ...(sizeMiB !== undefined ? { sizeMiB } : {}),
  }).then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(`demo failed: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(controller.signal.aborted ? 130 : 1);
    },
  );
}
