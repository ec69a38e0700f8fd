/**
 * What pull, push and copy share: show the operation's status stream, wait for it, print the
 * result (a summary line, the digest with `--quiet`, a `result` line with `--json`).
 */
import { InvalidArgumentError, type TransferOperation, type TransferOptions, type TransferResult } from "@ferry/core";
import type { CommandContext, OptionValues } from "./command.ts";
import { write } from "./io.ts";
import { formatBytes, formatDuration, formatRate } from "./progress/format.ts";
import { resultLine } from "./progress/json-lines.ts";
import { renderProgress, type ProgressMode } from "./progress/render.ts";
import { reportedInStream } from "./reported.ts";
import { listOpt, MAX_PARALLEL, parseCount, stringOpt } from "./command.ts";

/** The progress mode the flags and the terminal ask for. */
export function progressMode(ctx: CommandContext): ProgressMode {
  const { flags, io } = ctx;
  if (flags.json) return "json";
  if (flags.quiet) return "none";
  if (flags.progress === "auto") return io.isTTY ? "tty" : "plain";
  return flags.progress;
}

export async function runTransfer(ctx: CommandContext, op: TransferOperation, verb: string, what: string): Promise<TransferResult> {
  const onAbort = (): void => op.cancel(ctx.signal.reason);
  ctx.signal.addEventListener("abort", onAbort, { once: true });
  const rendering = renderProgress(op.status$, { mode: progressMode(ctx), out: ctx.io.stderr, jsonOut: ctx.io.stdout });
  try {
    const result = await op.done.catch((err: unknown) => {
      if (typeof err === "object" && err !== null) reportedInStream.add(err);
      throw err;
    });
    rendering.stop("done");
    const line = ctx.flags.json ? resultLine(result) : ctx.flags.quiet ? `${result.root.digest}\n` : summary(verb, what, result);
    // The work is done: a reader of the report who went away (`| head -1`) does not undo it.
    await write(ctx.io.stdout, line).catch((err: unknown) => {
      if (!readerGone(err)) throw err;
    });
    return result;
  } finally {
    rendering.stop("failed");
    ctx.signal.removeEventListener("abort", onAbort);
  }
}

/** A write failed because the other end of the pipe is closed. */
function readerGone(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === "EPIPE" || code === "ERR_STREAM_DESTROYED" || code === "ERR_STREAM_WRITE_AFTER_END";
}

/** `pulled REF sha256:… (N blobs, X transferred in T, R)` */
export function summary(verb: string, what: string, r: TransferResult): string {
  const t = r.totals;
  const secs = Math.max(t.elapsedMs, 1) / 1000;
  const existing = t.blobsExisting > 0 ? `, ${t.blobsExisting} already there` : "";
  return (
    `${verb} ${what} ${r.root.digest}\n` +
    `  ${t.blobsDone} blobs${existing}, ${formatBytes(t.bytesTransferred)} transferred of ${formatBytes(t.bytesTotal)} in ` +
    `${formatDuration(t.elapsedMs)} (${formatRate(t.bytesTransferred / secs)})\n`
  );
}

/** `--concurrency N` as a positive integer. */
export function concurrencyOpt(values: OptionValues): number | undefined {
  const raw = stringOpt(values, "concurrency");
  if (raw === undefined) return undefined;
  return parseCount(raw, "--concurrency", 1, MAX_PARALLEL);
}

/** `--platform P` (repeatable, preference order) or `--all-platforms`; undefined = the command's default. */
export function platformOpt(values: OptionValues): string[] | "all" | undefined {
  const list = listOpt(values, "platform");
  if (values["all-platforms"] === true) {
    if (list.length > 0) throw new InvalidArgumentError("--platform and --all-platforms exclude each other");
    return "all";
  }
  return list.length > 0 ? list : undefined;
}

/**
 * `--platform`/`--all-platforms` and `--concurrency` as transfer options, validated (so call it
 * before opening anything). With several `--platform`s, `keepListed` keeps every listed platform
 * (pull, copy); without it the best of them is taken (push: a registry gets one platform's image
 * or the whole index).
 */
export function transferFlags(values: OptionValues, keepListed: boolean): Pick<TransferOptions, "platform" | "platformLimit" | "concurrency"> {
  const platform = platformOpt(values);
  const concurrency = concurrencyOpt(values);
  return {
    ...(platform !== undefined ? { platform } : {}),
    ...(keepListed && Array.isArray(platform) && platform.length > 1 ? { platformLimit: platform.length } : {}),
    ...(concurrency !== undefined ? { concurrency } : {}),
  };
}

export const transferOptions = {
  platform: { type: "string", multiple: true },
  "all-platforms": { type: "boolean" },
  concurrency: { type: "string" },
} as const;

export const transferHelp: Array<[string, string]> = [
  ["--platform os/arch[/variant]", "platform(s) to take from an index, in preference order (repeatable)"],
  ["--all-platforms", "every platform of an index"],
  ["--concurrency N", "blobs moved at once; default 4"],
];
