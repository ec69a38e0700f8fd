// Public surface of @ferry/cli: the `ferry` command as a function, its exit codes, and the
// progress renderer (used by the examples and the demo to draw the same bars).
export { run, commandTable, version } from "./cli.ts";
export type { CommandEntry } from "./commands/index.ts";
export type { CliIO } from "./io.ts";
export { ExitCode, exitCodeFor, type ExitCodeValue } from "./exit-codes.ts";
export { UsageError } from "./usage-error.ts";
export { renderProgress, type ProgressMode, type RenderOptions, type Rendering } from "./progress/render.ts";
export { summary } from "./transfer.ts";
export { formatBytes, formatDuration, formatRate } from "./progress/format.ts";
export { parseTarget, type Target } from "./endpoint.ts";
export { FERRY_NODE_FLAGS } from "./node-flags.ts";
