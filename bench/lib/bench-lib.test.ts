import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Descriptor, Digest } from "../../packages/core/src/index.ts";
import type { CaseReport } from "./cases.ts";
import { figures, median, summarise } from "./contest.ts";
import { measure } from "./measure.ts";
import { toMarkdown, type BenchReport } from "./report.ts";
import { storedBytes } from "./stored-bytes.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "ferry-bench-lib-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("median and summaries", () => {
  it("takes the middle value, or the mean of the two middle ones", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  it("computes MB/s and blobs/s from wall time and takes each figure's own median", () => {
    const a = figures({ wallS: 2, cpuS: 1, peakRssMB: 50, innerS: 1 }, 200e6, 10);
    expect(a.mbps).toBe(100);
    expect(a.blobsPerS).toBe(5);
    expect(a.innerMBps).toBe(200);
    const b = figures({ wallS: 1, cpuS: 3, peakRssMB: 90 }, 200e6, 10);
    const c = figures({ wallS: 4, cpuS: 2, peakRssMB: 70 }, 200e6, 10);
    const s = summarise("x", [a, b, c]);
    expect(s.median.wallS).toBe(2);
    expect(s.median.cpuS).toBe(2);
    expect(s.median.peakRssMB).toBe(70);
    // One run without its own clock: no operation-alone median.
    expect(s.median.innerMBps).toBeUndefined();
  });
});

describe("storedBytes (resume accounting)", () => {
  const desc = (hex: string, size: number): Descriptor => ({
    mediaType: "application/vnd.oci.image.layer.v1.tar",
    digest: `sha256:${hex.repeat(64 / hex.length)}` as Digest,
    size,
  });
  const committed = desc("a", 100);
  const partial = desc("b", 200);
  const absent = desc("c", 300);

  async function ingest(key: string, d: Descriptor, bytes: number): Promise<void> {
    await mkdir(join(dir, "store", "ingest", key), { recursive: true });
    await writeFile(join(dir, "store", "ingest", key, "ref"), `layer-${d.digest}`);
    await writeFile(join(dir, "store", "ingest", key, "data"), Buffer.alloc(bytes));
  }

  it("counts a committed blob once even when its ingest is still there, a partial ingest by its data, nothing for an absent blob", async () => {
    await mkdir(join(dir, "store", "blobs", "sha256"), { recursive: true });
    await writeFile(join(dir, "store", "blobs", "sha256", committed.digest.slice(7)), Buffer.alloc(100));
    await ingest("k1", committed, 100); // published, crashed before the ingest was removed
    await ingest("k2", partial, 70);
    expect(await storedBytes(join(dir, "store"), { descriptors: [committed, partial, absent] })).toBe(170);
  });

  it("does not count a blob file of the wrong size as committed", async () => {
    await writeFile(join(dir, "store", "blobs", "sha256", absent.digest.slice(7)), Buffer.alloc(10));
    expect(await storedBytes(join(dir, "store"), { descriptors: [absent] })).toBe(0);
  });
});

describe.runIf(existsSync("/usr/bin/time"))("measure", () => {
  it("reports exit code, output, CPU and peak RSS of the process", async () => {
    const m = await measure(["sh", "-c", "echo hello; head -c 20000000 /dev/zero | tail -c 1 >/dev/null"], dir);
    expect(m.code).toBe(0);
    expect(m.stdout).toBe("hello\n");
    expect(m.peakRssMB).toBeGreaterThan(0);
    expect(m.wallS).toBeGreaterThan(0);
  });

  it("kills the measured process when onLine says so, and still reads its figures", async () => {
    const m = await measure(["sh", "-c", "echo go; exec sleep 30"], dir, { allowFailure: true, onLine: (l) => l === "go" });
    expect(m.code).not.toBe(0);
    expect(m.wallS).toBeLessThan(25);
  });

  it("fails on a non-zero exit unless allowed", async () => {
    await expect(measure(["sh", "-c", "exit 3"], dir)).rejects.toMatchObject({ code: "Internal" });
  });
});

describe("toMarkdown", () => {
  it("lists every contender's medians and marks met and missed targets", () => {
    const run = figures({ wallS: 1, cpuS: 1, peakRssMB: 80, innerS: 0.5 }, 100e6, 2);
    const c: CaseReport = {
      id: "1",
      title: "pull",
      registry: "docker-registry",
      bytes: 100e6,
      blobs: 2,
      contenders: [summarise("ferry", [run]), summarise("skopeo", [run])],
      ratios: { "ferry/skopeo": 1 },
      ofLimits: {},
      targets: [
        { what: "speed", value: 1, goal: 2, kind: "min", met: false },
        { what: "rss", value: 80, goal: 100, kind: "max", met: true },
      ],
    };
    const r: BenchReport = {
      startedAt: "t",
      durationS: 1,
      quick: true,
      rounds: 1,
      machine: { cpus: 2, loadavgAtStart: [1, 1, 1], node: "v20", skopeo: "s", registry: "r" },
      limits: { curlFileMBps: 1, curlNullMBps: 1, ddFsyncMBps: 1, sha256MBps: 1, bytes: 1 },
      cases: [c],
    };
    const md = toMarkdown(r);
    expect(md).toContain("| 1 pull | ferry | 100 | 2 | 1.00 | 1.00 | 80 | 200 |");
    expect(md).toContain("| 1 pull | skopeo |");
    expect(md).toContain("❌ speed 1.00 (goal ≥ 2)");
    expect(md).toContain("✅ rss 80.00 (goal ≤ 100)");
  });
});
