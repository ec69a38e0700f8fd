/**
 * `pnpm bench:fetch [SIZE_MIB] [RUNS]`: pull one large random blob from a local docker-registry
 * through ferry and compare with `curl -s -o /dev/null` on the same URL.
 *
 * Measures (median of RUNS, default 3; size default 512 MiB):
 *  - curl to /dev/null (the ceiling: no hashing, no writing);
 *  - ferry fetch → sink, size and digest verified while streaming;
 *  - ferry fetchToStore into a hashing null ingester, serial and with parallel ranges;
 *  - ferry fetchToStore into store-fs (real files, fsync at commit), serial and parallel;
 *  - ferry push of the same blob (monolithic PUT), for reference;
 *  - serial vs parallel ranges through the testkit proxy capping each connection at 100 MB/s
 *    (a stand-in for links where one TCP stream cannot fill the pipe), one run each.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import type { Descriptor, Digest, Ingester, Status, Writer } from "../packages/core/src/index.ts";
import { DigestMismatchError, MediaTypes, SizeMismatchError } from "../packages/core/src/index.ts";
import { createRegistryResolver, fetchToStore, type RegistryResolverOptions } from "../packages/fetcher/src/index.ts";
import { openFsStore } from "../packages/store-fs/src/index.ts";
import { randomStream, startDockerRegistry, startFaultProxy } from "../packages/testkit/src/index.ts";

const sizeMiB = Number(process.argv[2] ?? 512);
const runs = Number(process.argv[3] ?? 3);
const size = sizeMiB * 1024 * 1024;
const SEED = "bench-fetch";

/** An ingester that only hashes: the transport's cost without a disk. */
class NullIngester implements Ingester {
  async writer(options: { ref: string; expected?: Digest }): Promise<Writer> {
    const hash = createHash("sha256");
    let offset = 0;
    const started = new Date();
    const w: Writer = {
      ref: options.ref,
      async write(chunk) {
        hash.update(chunk);
        offset += chunk.byteLength;
      },
      digest: () => `sha256:${hash.copy().digest("hex")}` as Digest,
      async status(): Promise<Status> {
        return { ref: options.ref, offset, total: size, startedAt: started, updatedAt: new Date() };
      },
      async truncate() {
        throw new Error("not supported in the benchmark");
      },
      async commit(sz, expected) {
        if (sz !== undefined && sz !== offset) throw new SizeMismatchError(`size ${offset} != ${sz}`);
        const got = w.digest();
        const want = expected ?? options.expected;
        if (want && got !== want) throw new DigestMismatchError(`${got} != ${want}`);
      },
      async close() {},
    };
    return w;
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

async function time(label: string, fn: () => Promise<void>): Promise<number> {
  const mbps: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    mbps.push(size / 1e6 / s);
  }
  const m = median(mbps);
  console.log(`${label.padEnd(44)} ${m.toFixed(0).padStart(6)} MB/s   (runs: ${mbps.map((x) => x.toFixed(0)).join(", ")})`);
  return m;
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), "ferry-bench-fetch-"));
  const registry = await startDockerRegistry({ logLevel: "error", tmpDir: work });
  // BENCH_RESOLVER='{"keepAliveReads":false}': resolver options (JSON), for A/B runs.
  const resolver = createRegistryResolver(process.env.BENCH_RESOLVER ? (JSON.parse(process.env.BENCH_RESOLVER) as RegistryResolverOptions) : {});
  try {
    // Digest first (one pass over the seeded stream), then push the same bytes.
    const h = createHash("sha256");
    for await (const c of randomStream(size, SEED)) h.update(c);
    const desc: Descriptor = { mediaType: MediaTypes.OciLayer, digest: `sha256:${h.digest("hex")}` as Digest, size };
    const name = `${registry.host}/bench/blob`;
    const pusher = await resolver.pusher(name);
    console.log(`blob ${desc.digest} (${sizeMiB} MiB) on ${registry.url}, ${runs} runs each, median`);
    const t0 = process.hrtime.bigint();
    await pusher.push(desc, { open: () => Readable.from(randomStream(size, SEED)) });
    console.log(`${"ferry push (monolithic PUT, random source)".padEnd(44)} ${(size / 1e6 / (Number(process.hrtime.bigint() - t0) / 1e9)).toFixed(0).padStart(6)} MB/s   (one run)`);

    const url = `${registry.url}/v2/bench/blob/blobs/${desc.digest}`;
    const curl = await time("curl -s -o /dev/null", async () => {
      const r = spawnSync("curl", ["-s", "-f", "-o", "/dev/null", url]);
      if (r.status !== 0) throw new Error(`curl failed: ${r.stderr}`);
    });
    const fetcher = await resolver.fetcher(name);
    const sink = await time("ferry fetch → sink (size+digest verified)", async () => {
      for await (const _ of await fetcher.fetch(desc)) void _;
    });
    const nullSerial = await time("ferry fetchToStore → hashing null store", async () => {
      await fetchToStore(fetcher, desc, new NullIngester(), { parallelRangeThreshold: Infinity });
    });
    const nullPar = await time("  same, 4 × 16 MiB parallel ranges", async () => {
      await fetchToStore(fetcher, desc, new NullIngester(), { parallelRangeThreshold: 0, rangeChunkSize: 16 << 20, parallelRanges: 4 });
    });
    let fsSerial = 0;
    let fsPar = 0;
    fsSerial = await time("ferry fetchToStore → store-fs", async () => {
      const dir = await mkdtemp(join(work, "store-"));
      await fetchToStore(fetcher, desc, await openFsStore(dir), { parallelRangeThreshold: Infinity });
      await rm(dir, { recursive: true, force: true });
    });
    fsPar = await time("  same, 4 × 16 MiB parallel ranges", async () => {
      const dir = await mkdtemp(join(work, "store-"));
      await fetchToStore(fetcher, desc, await openFsStore(dir), { parallelRangeThreshold: 0, rangeChunkSize: 16 << 20, parallelRanges: 4 });
      await rm(dir, { recursive: true, force: true });
    });
    // A link where one connection is the bottleneck (long fat pipes, per-connection shaping).
    const proxy = await startFaultProxy({ target: registry.url, rules: [{ method: "GET", rateBytesPerSec: 100e6 }] });
    const capped = await resolver.fetcher(`${proxy.host}/bench/blob`);
    const once = async (label: string, fn: () => Promise<void>) => {
      const t0 = process.hrtime.bigint();
      await fn();
      const v = size / 1e6 / (Number(process.hrtime.bigint() - t0) / 1e9);
      console.log(`${label.padEnd(44)} ${v.toFixed(0).padStart(6)} MB/s   (one run)`);
      return v;
    };
    const capSerial = await once("capped 100 MB/s/conn: serial → null store", () =>
      fetchToStore(capped, desc, new NullIngester(), { parallelRangeThreshold: Infinity }).then(() => {}),
    );
    const capPar = await once("  same, 4 × 16 MiB parallel ranges", () =>
      fetchToStore(capped, desc, new NullIngester(), { parallelRangeThreshold: 0, rangeChunkSize: 16 << 20, parallelRanges: 4 }).then(() => {}),
    );
    await proxy.stop();
    console.log("");
    console.log(`parallel / serial (capped link):    ${(capPar / capSerial).toFixed(2)}`);
    console.log(`ratio ferry sink / curl:            ${(sink / curl).toFixed(2)}`);
    console.log(`ratio fetchToStore null / curl:     ${(nullSerial / curl).toFixed(2)}`);
    console.log(`parallel / serial (null store):     ${(nullPar / nullSerial).toFixed(2)}`);
    console.log(`parallel / serial (store-fs):       ${(fsPar / fsSerial).toFixed(2)}`);
  } finally {
    await resolver.close();
    await registry.stop();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
