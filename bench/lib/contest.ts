/**
 * Alternating runs of several contenders on the same work (ferry, then each peer, repeated), so
 * load from other users of the shared machine spreads over all of them; medians per contender.
 */
import type { Measured } from "./measure.ts";

export interface Contender {
  name: string;
  /** Run once (fresh destination each time) and return what was measured. */
  run(round: number): Promise<Measured>;
}

export interface RunFigures {
  wallS: number;
  cpuS: number;
  peakRssMB: number;
  /** Decimal MB per second of wall time. */
  mbps: number;
  /** Blobs per second of wall time. */
  blobsPerS: number;
  /** MB/s of the operation alone (ferry only: from its own clock, without process start-up). */
  innerMBps?: number;
}

export interface ContenderResult {
  name: string;
  runs: RunFigures[];
  /** Median of each figure over the runs (each figure's own median). */
  median: RunFigures;
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

export function figures(m: Pick<Measured, "wallS" | "cpuS" | "peakRssMB" | "innerS">, bytes: number, blobs: number): RunFigures {
  return {
    wallS: m.wallS,
    cpuS: m.cpuS,
    peakRssMB: m.peakRssMB,
    mbps: bytes / 1e6 / m.wallS,
    blobsPerS: blobs / m.wallS,
    ...(m.innerS !== undefined ? { innerMBps: bytes / 1e6 / m.innerS } : {}),
  };
}

export function summarise(name: string, runs: RunFigures[]): ContenderResult {
  const pick = (k: keyof RunFigures): number => median(runs.map((r) => r[k] ?? Number.NaN));
  const inner = runs.every((r) => r.innerMBps !== undefined) ? { innerMBps: pick("innerMBps") } : {};
  return {
    name,
    runs,
    median: { wallS: pick("wallS"), cpuS: pick("cpuS"), peakRssMB: pick("peakRssMB"), mbps: pick("mbps"), blobsPerS: pick("blobsPerS"), ...inner },
  };
}

/** Run every contender `rounds` times, alternating, and log each run as it ends. */
export async function contest(
  label: string,
  contenders: Contender[],
  rounds: number,
  bytes: number,
  blobs: number,
  log: (s: string) => void,
): Promise<ContenderResult[]> {
  const runs = new Map<string, RunFigures[]>(contenders.map((c) => [c.name, []]));
  for (let r = 0; r < rounds; r++) {
    for (const c of contenders) {
      const f = figures(await c.run(r), bytes, blobs);
      runs.get(c.name)!.push(f);
      log(
        `  ${label} ${c.name.padEnd(16)} run ${r + 1}/${rounds}: ${f.wallS.toFixed(2)} s, ${f.mbps.toFixed(0)} MB/s, ` +
          `${f.blobsPerS.toFixed(0)} blobs/s, cpu ${f.cpuS.toFixed(2)} s, rss ${f.peakRssMB.toFixed(0)} MB` +
          (f.innerMBps !== undefined ? ` (operation alone ${f.innerMBps.toFixed(0)} MB/s)` : ""),
      );
    }
  }
  return contenders.map((c) => summarise(c.name, runs.get(c.name)!));
}
