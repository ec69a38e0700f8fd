/**
 * The command dispatcher: global flags, subcommand lookup, `node:util` `parseArgs` per command,
 * help and version, and the mapping of errors to exit codes.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { FerryError } from "@ferry/core";
import type { Command, GlobalFlags, OptionsConfig } from "./command.ts";
import { commandTable, type CommandEntry } from "./commands/index.ts";
import { ExitCode, exitCodeFor } from "./exit-codes.ts";
import { write, type CliIO } from "./io.ts";
import { reportedInStream } from "./reported.ts";
import { UsageError } from "./usage-error.ts";

export { commandTable };

const globalOptions: OptionsConfig = {
  json: { type: "boolean" },
  quiet: { type: "boolean", short: "q" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean" },
  progress: { type: "string" },
};

const globalHelp: Array<[string, string]> = [
  ["--json", "machine output: NDJSON status events / records on stdout"],
  ["-q, --quiet", "no progress; print only the essential result (a digest)"],
  ["--progress MODE", "auto (bars on a terminal, else lines), tty, plain or none"],
  ["-h, --help", "help for ferry or for a command"],
  ["--version", "print the version"],
];

/** The version of @ferry/cli. */
export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

function table(rows: Array<[string, string]>): string {
  const width = Math.max(...rows.map(([a]) => a.length));
  return rows.map(([a, b]) => `  ${a.padEnd(width)}  ${b}`).join("\n");
}

export function mainHelp(): string {
  return [
    "ferry — pull, push and copy OCI images and artifacts",
    "",
    "Usage: ferry [global options] COMMAND [options] [args]",
    "",
    "Commands:",
    table(commandTable.map((c) => [c.name, c.summary])),
    "",
    "Global options:",
    table(globalHelp),
    "",
    "Exit codes: 0 ok, 1 failure, 2 usage, 3 not found, 4 auth, 5 network, 130 interrupted.",
    "Run `ferry COMMAND --help` for a command's options. Default store: ./.content",
    "",
  ].join("\n");
}

/** Help for a command group (`ferry content`). */
export async function groupHelp(group: string): Promise<string> {
  const members = await Promise.all(commandTable.filter((c) => c.name.startsWith(`${group} `)).map((c) => c.load()));
  return [`Usage: ferry ${group} SUBCOMMAND [options]`, "", "Subcommands:", table(members.map((c) => [c.usage, c.summary])), ""].join("\n");
}

export function commandHelp(c: Command): string {
  return [
    `Usage: ferry ${c.usage}`,
    "",
    c.description ?? c.summary,
    "",
    ...(c.optionHelp.length > 0 ? ["Options:", table(c.optionHelp), ""] : []),
    "Global options:",
    table(globalHelp),
    "",
  ].join("\n");
}

/** Split `argv` into the command words and the rest; only global options may precede them. */
/** Whether the command of `argv` only reports on stdout (see {@link CommandEntry.reportsOnStdout}). */
export function reportsOnStdout(argv: string[]): boolean {
  return findCommand(argv).command?.reportsOnStdout === true;
}

function findCommand(argv: string[]): { command?: CommandEntry; words: string[]; rest: string[] } {
  const rest: string[] = [];
  const words: string[] = [];
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === "--") break;
    if (a.startsWith("-")) {
      rest.push(a);
      // A global option that takes a value (`--progress plain`) keeps its value with it.
      const opt = globalOptions[a.replace(/^--/, "")];
      if (opt?.type === "string" && i + 1 < argv.length) rest.push(argv[++i] as string);
      continue;
    }
    words.push(a);
    if (a !== "content") break;
  }
  // After the command word: everything. At a `--`: the separator too, so parseArgs still treats
  // what follows as positionals.
  rest.push(...argv.slice(argv[i] === "--" ? i : i + 1));
  const name = words.join(" ");
  const entry = name ? commandTable.find((c) => c.name === name) : undefined;
  return { ...(entry ? { command: entry } : {}), words, rest };
}

function flagsFrom(values: Record<string, unknown>): GlobalFlags {
  const p = values.progress;
  if (p !== undefined && p !== "auto" && p !== "tty" && p !== "plain" && p !== "none") {
    throw new UsageError(`--progress must be auto, tty, plain or none, got ${JSON.stringify(p)}`);
  }
  return { json: values.json === true, quiet: values.quiet === true, progress: (p ?? "auto") as GlobalFlags["progress"] };
}

/**
 * Run the CLI with `argv` (without the node and script paths) and resolve with the exit code.
 * Never throws: errors are printed on `io.stderr` (and as a JSON line on stdout with `--json`).
 */
export async function run(argv: string[], partialIO: Partial<CliIO> = {}): Promise<number> {
  const io: CliIO = {
    stdin: partialIO.stdin ?? process.stdin,
    stdout: partialIO.stdout ?? process.stdout,
    stderr: partialIO.stderr ?? process.stderr,
    isTTY: partialIO.isTTY ?? process.stderr.isTTY === true,
    cwd: partialIO.cwd ?? process.cwd(),
    ...(partialIO.signal ? { signal: partialIO.signal } : {}),
  };
  let json = argv.includes("--json");
  const found = findCommand(argv);
  const { words, rest } = found;
  let command: Command | undefined;
  try {
    if (!found.command) {
      let values;
      try {
        ({ values } = parseArgs({ args: rest, options: globalOptions, strict: true, allowPositionals: false }));
      } catch (err) {
        throw new UsageError(err instanceof Error ? err.message : String(err), undefined, { cause: err });
      }
      if (values.version) {
        await write(io.stdout, `ferry ${version()}\n`);
        return ExitCode.Ok;
      }
      if (words.length === 1 && words[0] === "content") {
        // The group alone: list its subcommands (help asked for → stdout and 0, else a usage error).
        await write(values.help ? io.stdout : io.stderr, await groupHelp("content"));
        return values.help ? ExitCode.Ok : ExitCode.Usage;
      }
      if (values.help || words.length === 0) {
        await write(values.help ? io.stdout : io.stderr, mainHelp());
        return values.help ? ExitCode.Ok : ExitCode.Usage;
      }
      throw new UsageError(`unknown command ${JSON.stringify(words.join(" "))}`);
    }
    command = await found.command.load();
    let parsed;
    try {
      parsed = parseArgs({ args: rest, options: { ...globalOptions, ...command.options }, strict: true, allowPositionals: true });
    } catch (err) {
      throw new UsageError(err instanceof Error ? err.message : String(err), command.name, { cause: err });
    }
    const { values, positionals } = parsed;
    json = values.json === true;
    if (values.help) {
      await write(io.stdout, commandHelp(command));
      return ExitCode.Ok;
    }
    if (values.version) {
      await write(io.stdout, `ferry ${version()}\n`);
      return ExitCode.Ok;
    }
    if (positionals.length < command.minArgs || positionals.length > command.maxArgs) {
      throw new UsageError(
        positionals.length < command.minArgs ? "missing argument" : `unexpected argument ${JSON.stringify(positionals[command.maxArgs])}`,
        command.name,
      );
    }
    const flags = flagsFrom(values);
    const signal = io.signal ?? new AbortController().signal;
    const code = await command.run({ io, values, positionals, flags, signal });
    return code ?? ExitCode.Ok;
  } catch (err) {
    return report(io, err, json, command);
  }
}

async function report(io: CliIO, err: unknown, json: boolean, command: Command | undefined): Promise<number> {
  const code = exitCodeFor(err);
  const fe = err instanceof FerryError ? err : undefined;
  const message = err instanceof Error ? err.message : String(err);
  let text = `ferry: ${message}${fe ? ` (${fe.code})` : ""}\n`;
  if (err instanceof UsageError) text += `Run 'ferry ${err.command ?? command?.name ?? ""}${err.command || command ? " " : ""}--help' for usage.\n`;
  try {
    await write(io.stderr, text);
    // With --json the caller parses stdout: give it the failure too (transfers already sent an `error` event).
    if (json && !(typeof err === "object" && err !== null && reportedInStream.has(err))) {
      await write(io.stdout, `${JSON.stringify({ type: "error", code: fe?.code ?? "Internal", message, exitCode: code })}\n`);
    }
  } catch {
    // stderr/stdout gone (closed pipe): the exit code still tells.
  }
  return code;
}
