/** The run's results as JSON (everything) and a short Markdown table (medians, ratios, targets). */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { CaseReport, Limits } from "./cases.ts";

export interface BenchReport {
  startedAt: string;
  durationS: number;
  quick: boolean;
  rounds: number;
  machine: { cpus: number; loadavgAtStart: number[]; node: string; skopeo: string; registry: string };
  /** How the measured ferry process was set up (node flags, run-time V8 settings). */
  ferryProcess?: string;
  limits: Limits;
  cases: CaseReport[];
}

const f0 = (x: number): string => (Number.isFinite(x) ? x.toFixed(0) : "–");
const f2 = (x: number): string => (Number.isFinite(x) ? x.toFixed(2) : "–");

export function toMarkdown(r: BenchReport): string {
  const lines: string[] = [];
  lines.push(`# ferry benchmark ${r.quick ? "(quick)" : ""}`.trim(), "");
  lines.push(
    `${r.startedAt}, ${f0(r.durationS)} s, medians of ${r.rounds} alternating runs; ${r.machine.cpus} cores shared ` +
      `(load at start ${r.machine.loadavgAtStart.map(f2).join(" ")}); node ${r.machine.node}, ${r.machine.skopeo}, ${r.machine.registry}.` +
      (r.ferryProcess ? ` ferry process: ${r.ferryProcess}.` : ""),
    "",
  );
  const l = r.limits;
  lines.push(
    `Machine limits (${f0(l.bytes / 2 ** 20)} MiB): curl → file ${f0(l.curlFileMBps)} MB/s, curl → /dev/null ${f0(l.curlNullMBps)} MB/s, ` +
      `dd with fsync ${f0(l.ddFsyncMBps)} MB/s, node sha256 ${f0(l.sha256MBps)} MB/s.`,
    "",
  );
  lines.push(
    "| case | who | MB/s | blobs/s | wall s | CPU s | peak RSS MB | MB/s of the operation alone |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
  );
  for (const c of r.cases) {
    for (const k of c.contenders) {
      const m = k.median;
      const inner = m.innerMBps !== undefined ? f0(m.innerMBps) : "";
      lines.push(`| ${c.id} ${c.title} | ${k.name} | ${f0(m.mbps)} | ${f0(m.blobsPerS)} | ${f2(m.wallS)} | ${f2(m.cpuS)} | ${f0(m.peakRssMB)} | ${inner} |`);
    }
  }
  lines.push("", "| case | ratios (ferry / other, higher is faster) | ferry / machine limits | targets |", "| --- | --- | --- | --- |");
  for (const c of r.cases) {
    const ratios = Object.entries(c.ratios).map(([k, v]) => `${k} ${f2(v)}`).join(", ") || "–";
    const lim = Object.entries(c.ofLimits).map(([k, v]) => `${k.replace("ferry/", "")} ${f2(v)}`).join(", ") || "–";
    const tg = c.targets
      .map((t) => `${t.met ? "✅" : "❌"} ${t.what} ${f2(t.value)} (goal ${t.kind === "min" ? "≥" : "≤"} ${t.goal})`)
      .join("; ");
    lines.push(`| ${c.id} | ${ratios} | ${lim} | ${tg} |`);
  }
  const resume = r.cases.find((c) => c.extra);
  if (resume?.extra) {
    const e = resume.extra;
    lines.push(
      "",
      `Resume (case ${resume.id}): ${f0((e.presentBytes ?? 0) / 2 ** 20)} MiB were stored when the pull was killed, ` +
        `${f0((e.missingBytes ?? 0) / 2 ** 20)} MiB missing, ${f0((e.resentBytes ?? 0) / 2 ** 20)} MiB re-sent (${f2(e.resentOverMissing ?? NaN)}×).`,
    );
  }
  return `${lines.join("\n")}\n`;
}

export async function writeReport(dir: string, base: string, r: BenchReport): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const json = join(dir, `${base}.json`);
  const md = join(dir, `${base}.md`);
  await writeFile(json, `${JSON.stringify(r, null, 2)}\n`);
  await writeFile(md, toMarkdown(r));
  return [json, md];
}
