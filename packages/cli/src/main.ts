/**
 * Process entry of the `ferry` command (`bin/ferry.js`, `pnpm ferry`): wires signals and a
 * closed stdout to the CLI, then exits with its code.
 */
import { useBaselineWasm } from "@ferry/fetcher";
import { ExitCode } from "./exit-codes.ts";
import { reportsOnStdout, run } from "./cli.ts";

// A transfer process: keep undici's HTTP parser off V8's optimizing compiler (30+ MB less peak
// RSS, same speed; see @ferry/fetcher's useBaselineWasm).
useBaselineWasm();

const controller = new AbortController();
let interrupted = false;
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    // A second signal means "now": do not wait for the cancellation to unwind.
    if (interrupted) process.exit(ExitCode.Interrupted);
    interrupted = true;
    controller.abort();
  });
}
// The reader of our stdout went away. `ferry fetch … | head`: stop quietly, like other tools. A
// transfer's stdout is only its report: the work goes on (exiting 0 said "pulled" of a pull cut
// short). Later writes fail again and land here, ignored.
const reportOnly = reportsOnStdout(process.argv.slice(2));
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code === "EPIPE" && !reportOnly) process.exit(ExitCode.Ok);
});
// Progress and messages on stderr are best-effort: a closed stderr must not end a transfer.
process.stderr.on("error", () => {});

// No top-level await: the bundle of this entry is CommonJS (scripts/bundle.mjs says why).
void run(process.argv.slice(2), { signal: controller.signal }).then((code) => {
  // Flush stdout before exiting: process.exit does not wait for a piped stdout to drain.
  process.stdout.write("", () => process.exit(code));
});
