/**
 * `node --import tsx bench/profile-summary.ts FILE.cpuprofile [TOP]`: self time per function and
 * per file (package) of a V8 CPU profile written by `pnpm bench --cpu-prof DIR`, to see where a
 * ferry process spends its time before optimising.
 */
import { readFile } from "node:fs/promises";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const [file, topArg] = process.argv.slice(2);
if (file === undefined) {
  process.stderr.write("usage: profile-summary FILE.cpuprofile [TOP]\n");
  process.exit(2);
}
const top = Number(topArg ?? 25);
const p = JSON.parse(await readFile(file, "utf8")) as Profile;
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const self = new Map<number, number>();
for (let i = 0; i < p.samples.length; i++) {
  const id = p.samples[i]!;
  self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0));
}
const total = (p.endTime - p.startTime) / 1000;
const fnTimes = new Map<string, number>();
const fileTimes = new Map<string, number>();
for (const [id, us] of self) {
  const n = byId.get(id)!;
  const cf = n.callFrame;
  const where = cf.url.replace(/^.*\/(packages|node_modules)\//, "$1/").replace(/^file:\/\//, "") || "(native)";
  const key = `${cf.functionName || "(anonymous)"} ${where}:${cf.lineNumber + 1}`;
  fnTimes.set(key, (fnTimes.get(key) ?? 0) + us / 1000);
  fileTimes.set(where, (fileTimes.get(where) ?? 0) + us / 1000);
}
const show = (title: string, m: Map<string, number>): void => {
  process.stdout.write(`\n${title}\n`);
  for (const [k, ms] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    process.stdout.write(`${ms.toFixed(0).padStart(8)} ms ${((ms / total) * 100).toFixed(1).padStart(5)}%  ${k}\n`);
  }
};
process.stdout.write(`profile ${file}: ${total.toFixed(0)} ms wall\n`);
show("self time by function", fnTimes);
show("self time by file", fileTimes);
