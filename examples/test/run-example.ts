/** Run an example file as its own process, the way its README line says (`tsx examples/<file>.ts`). */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../..", import.meta.url));
const tsx = fileURLToPath(new URL("../../node_modules/.bin/tsx", import.meta.url));

export interface ExampleRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** `cwd` defaults to the repository root; the file is always `examples/<file>` of this checkout. */
export function runExample(file: string, args: string[] = [], timeoutMs = 120_000, cwd = root): Promise<ExampleRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(tsx, [`${root}/examples/${file}`, ...args], { cwd, stdio: ["ignore", "pipe", "pipe"], timeout: timeoutMs });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString("utf8")));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}
