/**
 * External tools the harness drives (docker-registry, skopeo, htpasswd, openssl): finding them
 * on PATH and running them with captured output and typed errors.
 */
import { spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";
import { AbortedError, FerryError, UnavailableError, type FerryErrorOptions } from "@ferry/core";

/** A tool exited non-zero (or was killed). `details` carry the command, exit code and stderr. */
export class ToolError extends FerryError {
  readonly tool: string;
  readonly exitCode: number | null;
  readonly stderr: string;
  constructor(tool: string, message: string, exitCode: number | null, stderr: string, options: FerryErrorOptions = {}) {
    super("Internal", message, { ...options, details: { tool, exitCode, stderr, ...options.details } });
    this.name = "ToolError";
    this.tool = tool;
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

const found = new Map<string, string | undefined>();

/** Absolute path of an executable on PATH, or undefined. Cached per process. */
export function whichTool(name: string): string | undefined {
  if (found.has(name)) return found.get(name);
  let hit: string | undefined;
  if (name.includes("/")) {
    hit = isExecutable(name) ? name : undefined;
  } else {
    for (const dir of (process.env.PATH ?? "").split(delimiter)) {
      if (dir === "") continue;
      const candidate = join(dir, name);
      if (isExecutable(candidate)) {
        hit = candidate;
        break;
      }
    }
  }
  found.set(name, hit);
  return hit;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** True when `name` is an executable on PATH. */
export function hasTool(name: string): boolean {
  return whichTool(name) !== undefined;
}

/** True when the `CI` environment variable asks for strict runs (missing tools fail, never skip). */
export function isStrictCI(): boolean {
  const ci = process.env.CI;
  return ci === "true" || ci === "1";
}

/**
 * Whether tests that need these tools should run. Returns false (skip) when one is missing,
 * except under `CI=true`, where it throws so the test file fails with the list of missing tools.
 * Use at the top of a test file: `describe.runIf(requireTools("skopeo"))(…)`.
 */
export function requireTools(...names: string[]): boolean {
  const missing = names.filter((n) => !hasTool(n));
  if (missing.length === 0) return true;
  if (isStrictCI()) {
    throw new UnavailableError(
      `required tool(s) missing under CI=true: ${missing.join(", ")} (run scripts/ensure-tools.sh or apt-get install them)`,
      { details: { missing } },
    );
  }
  return false;
}

export interface RunToolOptions {
  /** Bytes written to the tool's stdin. Default: none (stdin is /dev/null). */
  input?: string | Uint8Array;
  /** Environment for the child. Default: this process's environment. */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  signal?: AbortSignal;
  /** Kill the tool after this many ms. Default: no limit. */
  timeoutMs?: number;
}

export interface ToolResult {
  stdout: string;
  stderr: string;
}

/**
 * Run `tool args…`, resolve with its output when it exits 0; otherwise reject with a
 * {@link ToolError} holding stderr. A missing tool rejects with `Unavailable`.
 */
export function runTool(tool: string, args: readonly string[], options: RunToolOptions = {}): Promise<ToolResult> {
  const path = whichTool(tool);
  if (path === undefined) {
    return Promise.reject(new UnavailableError(`${tool} is not installed (not found on PATH)`, { details: { tool } }));
  }
  if (options.signal?.aborted) return Promise.reject(new AbortedError(`${tool} aborted before start`, { cause: options.signal.reason }));
  return new Promise((resolve, reject) => {
    const child = spawn(path, args, {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on("data", (c: Buffer) => out.push(c));
    child.stderr!.on("data", (c: Buffer) => err.push(c));
    let killedBy: "abort" | "timeout" | undefined;
    const onAbort = (): void => {
      killedBy = "abort";
      child.kill("SIGKILL");
    };
    options.signal?.addEventListener("abort", onAbort, { once: true });
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            killedBy = "timeout";
            child.kill("SIGKILL");
          }, options.timeoutMs);
    if (options.input !== undefined) child.stdin!.end(options.input);
    child.on("error", (e) => {
      cleanup();
      reject(new ToolError(tool, `${tool} failed to start: ${e.message}`, null, "", { cause: e }));
    });
    child.on("close", (code, sig) => {
      cleanup();
      const stdout = Buffer.concat(out).toString("utf8");
      const stderr = Buffer.concat(err).toString("utf8");
      if (killedBy === "abort") {
        reject(new AbortedError(`${tool} aborted`, { cause: options.signal?.reason }));
      } else if (code === 0) {
        resolve({ stdout, stderr });
      } else {
        const why = killedBy === "timeout" ? `timed out after ${options.timeoutMs} ms` : sig ? `killed by ${sig}` : `exit code ${code}`;
        reject(new ToolError(tool, `${tool} ${args[0] ?? ""} failed (${why}): ${lastLines(stderr, 5)}`, code, stderr));
      }
    });
    function cleanup(): void {
      if (timer) clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
    }
  });
}

function lastLines(s: string, n: number): string {
  const lines = s.trim().split("\n");
  return lines.slice(-n).join(" | ") || "(no stderr)";
}
