/**
 * Run a process under GNU `/usr/bin/time` and read back what the kernel accounted for it: wall
 * time, user and system CPU, and peak resident set size (ru_maxrss, i.e. VmHWM of the largest
 * process in the tree). The same wrapper measures ferry's worker and the peers (skopeo, curl, dd).
 */
import { spawn } from "node:child_process";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { InternalError } from "../../packages/core/src/errors.ts";

export interface Measured {
  /** Seconds of wall time (measured by the benchmark, not by `time`, for ms resolution). */
  wallS: number;
  /** Seconds of user + system CPU. */
  cpuS: number;
  userS: number;
  sysS: number;
  /** Peak RSS in MB (10^6 bytes). */
  peakRssMB: number;
  stdout: string;
  stderr: string;
  /** Exit code, or null when killed. */
  code: number | null;
  /** Seconds the operation itself took, as reported by the ferry worker (excludes process start-up). */
  innerS?: number;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  /** Called with each stdout line; return true to SIGKILL the process. */
  onLine?: (line: string) => boolean;
  /** Do not fail on a non-zero exit (e.g. killed on purpose). */
  allowFailure?: boolean;
  signal?: AbortSignal;
}

const TIME = "/usr/bin/time";
let seq = 0;

export async function measure(argv: string[], scratch: string, options: RunOptions = {}): Promise<Measured> {
  const out = join(scratch, `time-${process.pid}-${++seq}.txt`);
  const t0 = performance.now();
  const child = spawn(TIME, ["-f", "%U %S %M", "-o", out, ...argv], {
    stdio: ["ignore", "pipe", "pipe"],
    env: options.env ?? process.env,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  let stdout = "";
  let stderr = "";
  let pending = "";
  let killed = false;
  child.stdout.setEncoding("utf8").on("data", (s: string) => {
    stdout += s;
    if (!options.onLine) return;
    pending += s;
    let nl: number;
    while ((nl = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      // /usr/bin/time's child is the measured process: kill it, time then reports and exits.
      if (!killed && options.onLine(line)) {
        killed = true;
        killGrandchild(child.pid);
      }
    }
  });
  child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (c) => resolve(c));
  });
  const wallS = (performance.now() - t0) / 1000;
  const text = await readFile(out, "utf8").catch(() => "");
  await rm(out, { force: true });
  const last = text.trim().split("\n").at(-1) ?? "";
  const [u, s, m] = last.split(" ").map(Number);
  const failed = code !== 0 && !options.allowFailure;
  if (failed || u === undefined || Number.isNaN(u) || s === undefined || m === undefined) {
    if (failed || !options.allowFailure) {
      throw new InternalError(`${argv.join(" ")} failed (exit ${code}): ${stderr.slice(-2000)}`, { details: { code } });
    }
  }
  const userS = u ?? 0;
  const sysS = s ?? 0;
  return { wallS, userS, sysS, cpuS: userS + sysS, peakRssMB: ((m ?? 0) * 1024) / 1e6, stdout, stderr, code };
}

/** SIGKILL the children of `pid` (the process `/usr/bin/time` runs). */
function killGrandchild(pid: number | undefined): void {
  if (pid === undefined) return;
  void readFile(`/proc/${pid}/task/${pid}/children`, "utf8")
    .then((s) => {
      for (const c of s.trim().split(/\s+/).filter(Boolean)) {
        try {
          process.kill(Number(c), "SIGKILL");
        } catch {
          // already gone
        }
      }
    })
    .catch(() => undefined);
}
