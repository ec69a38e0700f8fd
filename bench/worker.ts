/**
 * One ferry operation per process, so the benchmark can measure wall time, CPU time and peak RSS
 * of the whole process from outside (under `/usr/bin/time`), exactly as it does for skopeo.
 * The benchmark bundles this file with esbuild first so no TypeScript compiler runs in the
 * measured process.
 *
 *   worker pull REF STORE_DIR [--concurrency N] [--progress] [--memory]
 *   worker push STORE_DIR NAME REF [--concurrency N]
 *
 * Prints one JSON line `{"ok":true,"totals":{…}}` on success. With `--progress` it also prints
 * `P <bytesDone> <bytesTotal>` lines (throttled by the status stream) so the parent can kill it
 * part-way (the resume case). `--memory` pulls into @ferry/store-memory instead (diagnostics:
 * the transport's share of a pull, without the filesystem store).
 */
import { pull, push, type TransferOperation } from "../packages/core/src/index.ts";
import { createRegistryResolver, useBaselineWasm, type RegistryResolverOptions } from "../packages/fetcher/src/index.ts";
import { openFsStore, type FsStoreOptions } from "../packages/store-fs/src/index.ts";
import { createMemoryStore } from "../packages/store-memory/src/index.ts";

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

async function main(argv: string[]): Promise<void> {
  // The process is set up as the `ferry` executable sets up its own (bench/main.ts passes the same
  // node flags); BENCH_SDK_DEFAULTS=1 measures the SDK in a process left at Node's defaults.
  if (process.env.BENCH_SDK_DEFAULTS !== "1") useBaselineWasm();
  const [cmd, ...rest] = argv;
  const positional = rest.filter((a, i) => !a.startsWith("--") && !(i > 0 && rest[i - 1] === "--concurrency"));
  // BENCH_CONCURRENCY=N: the same as --concurrency N for every run (A/B runs of the default).
  const concurrency = flag(rest, "--concurrency") ?? process.env.BENCH_CONCURRENCY;
  const common = concurrency !== undefined ? { concurrency: Number(concurrency) } : {};
  // BENCH_RANGES=N: fetch blobs with N parallel 16 MiB ranges (parallelRangeThreshold 0), to measure that option.
  const ranges = Number(process.env.BENCH_RANGES ?? 0);
  // BENCH_STORE='{"directWriteMinBytes":…}': store-fs options (JSON), to compare settings in A/B runs.
  const storeOptions = process.env.BENCH_STORE ? (JSON.parse(process.env.BENCH_STORE) as FsStoreOptions) : {};
  // BENCH_RESOLVER='{"socketReadBytes":0}': resolver options (JSON), for A/B runs.
  const resolverOptions = process.env.BENCH_RESOLVER ? (JSON.parse(process.env.BENCH_RESOLVER) as RegistryResolverOptions) : {};
  const resolver = createRegistryResolver({
    ...(ranges > 0 ? { parallelRangeThreshold: 0, rangeChunkSize: 16 * 1024 * 1024, parallelRanges: ranges } : {}),
    ...resolverOptions,
  });
  let op: TransferOperation;
  try {
    if (cmd === "pull") {
      const [ref, dir] = positional as [string, string];
      const store = rest.includes("--memory") ? createMemoryStore() : await openFsStore(dir, storeOptions);
      op = pull(ref, { resolver, store, ...common });
    } else if (cmd === "push") {
      const [dir, name, ref] = positional as [string, string, string];
      const store = await openFsStore(dir, storeOptions);
      op = push(ref, { store, name, resolver, ...common });
    } else {
      process.stderr.write(`unknown worker command ${cmd ?? ""}\n`);
      process.exitCode = 2;
      return;
    }
    if (rest.includes("--progress")) {
      op.events.on("progress", (p) => process.stdout.write(`P ${p.bytesDone} ${p.bytesTotal}\n`));
    }
    // BENCH_MEM=1: report the peak of each memoryUsage() field (sampled), to see where RSS goes.
    const peaks: Record<string, number> = {};
    const sample = (): void => {
      for (const [k, v] of Object.entries(process.memoryUsage())) peaks[k] = Math.max(peaks[k] ?? 0, v);
    };
    const timer = process.env.BENCH_MEM ? setInterval(sample, 20) : undefined;
    const result = await op.done;
    if (timer) {
      clearInterval(timer);
      sample();
      process.stderr.write(`memory peaks (MB): ${Object.entries(peaks).map(([k, v]) => `${k} ${(v / 1e6).toFixed(1)}`).join(", ")}\n`);
    }
    process.stdout.write(`${JSON.stringify({ ok: true, totals: result.totals })}\n`);
  } finally {
    await resolver.close();
  }
}

// No top-level await: the benchmark bundles this file as CommonJS (lib/bundle.ts, codeCache).
main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
