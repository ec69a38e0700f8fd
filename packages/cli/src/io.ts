import type { Readable, Writable } from "node:stream";

/** Where a command reads and writes; `run` defaults each field to the process's own. */
export interface CliIO {
  /** Default `process.stdin`. */
  stdin: Readable;
  /** Data and results (`--json` events, fetched bytes, listings). Default `process.stdout`. */
  stdout: Writable;
  /** Progress and messages. Default `process.stderr`. */
  stderr: Writable;
  /** Draw live progress bars on `stderr`. Default: `process.stderr.isTTY`. */
  isTTY: boolean;
  /** Relative store paths resolve against this. Default `process.cwd()`. */
  cwd: string;
  /** Cancels the running command (exit code 130). Default: SIGINT/SIGTERM of the process. */
  signal?: AbortSignal;
}

/** Write `text` and wait until the stream accepted it (keeps order with later piped data). */
export function write(out: Writable, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    out.write(text, (err) => (err ? reject(err) : resolve()));
  });
}
