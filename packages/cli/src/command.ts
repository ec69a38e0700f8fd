/** The shape of one subcommand: its options (for `node:util` `parseArgs`), help text and body. */
import type { ParseArgsConfig } from "node:util";
import type { CliIO } from "./io.ts";
import { UsageError } from "./usage-error.ts";

export type OptionsConfig = NonNullable<ParseArgsConfig["options"]>;
export type OptionValues = Record<string, string | boolean | Array<string | boolean> | undefined>;

/** Output style chosen by the global flags. */
export interface GlobalFlags {
  /** `--json`: NDJSON on stdout (status events, listings), no human text there. */
  json: boolean;
  /** `--quiet`: no progress; only the essential result (a digest) on stdout. */
  quiet: boolean;
  /** `--progress`: `auto` (bars on a TTY, else lines), `tty`, `plain` or `none`. */
  progress: "auto" | "tty" | "plain" | "none";
}

export interface CommandContext {
  io: CliIO;
  values: OptionValues;
  positionals: string[];
  flags: GlobalFlags;
  signal: AbortSignal;
}

export interface Command {
  /** `pull`, or `content ingest` for the content group. */
  name: string;
  /** One line for the command list. */
  summary: string;
  /** Usage line(s) after `ferry `. */
  usage: string;
  /** Longer description for `--help`. */
  description?: string;
  options: OptionsConfig;
  /** `[flag text, description]` rows for `--help`. */
  optionHelp: Array<[string, string]>;
  /** Exact positional count bounds. */
  minArgs: number;
  maxArgs: number;
  /** Resolves with an exit code (default 0). */
  run(ctx: CommandContext): Promise<number | void>;
}

/** Shared option definitions. */
export const storeOption: OptionsConfig = { store: { type: "string" } };
export const registryOptions: OptionsConfig = { insecure: { type: "string", multiple: true }, user: { type: "string" }, "per-host": { type: "string" } };
export const storeHelp: [string, string] = ["--store DIR", "content store (an OCI image layout); default ./.content"];
export const insecureHelp: [string, string] = [
  "--insecure HOST",
  "talk plain HTTP to this registry (repeatable); loopback hosts always are",
];
export const perHostHelp: [string, string] = [
  "--per-host N",
  "requests in flight to one registry host (default 8); raise it with --concurrency above 8",
];
export const userHelp: [string, string] = [
  "--user USER:PASS",
  "credentials for the registries of this command (else docker's config.json and helpers)",
];

export function stringOpt(values: OptionValues, key: string): string | undefined {
  const v = values[key];
  return typeof v === "string" ? v : undefined;
}

/** The registry flags of a command's parsed values. */
export function registryFlags(values: OptionValues): { insecure: string[]; user?: string; perHost?: number } {
  const user = stringOpt(values, "user");
  const raw = stringOpt(values, "per-host");
  let perHost: number | undefined;
  if (raw !== undefined) {
    perHost = Number(raw);
    if (!Number.isInteger(perHost) || perHost < 1) throw new UsageError(`--per-host must be a positive integer, got ${JSON.stringify(raw)}`);
  }
  return { insecure: listOpt(values, "insecure"), ...(user !== undefined ? { user } : {}), ...(perHost !== undefined ? { perHost } : {}) };
}

export function listOpt(values: OptionValues, key: string): string[] {
  const v = values[key];
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === "string");
  return typeof v === "string" ? [v] : [];
}
