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

/**
 * A whole number given as decimal digits, within [min, max]: `Number()` also took `1e9`, `0x10`,
 * `" 4"` and numbers past 2^53.
 */
export function parseCount(raw: string, flag: string, min: number, max: number): number {
  const n = /^\d{1,16}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`${flag} must be a whole number from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return n;
}

/** Most requests or blobs in flight a flag may ask for. */
export const MAX_PARALLEL = 1024;

export function stringOpt(values: OptionValues, key: string): string | undefined {
  const v = values[key];
  return typeof v === "string" ? v : undefined;
}

/** The registry flags of a command's parsed values. */
export function registryFlags(values: OptionValues): { insecure: string[]; user?: string; perHost?: number } {
  const user = stringOpt(values, "user");
  const raw = stringOpt(values, "per-host");
  const perHost = raw === undefined ? undefined : parseCount(raw, "--per-host", 1, MAX_PARALLEL);
  return { insecure: listOpt(values, "insecure"), ...(user !== undefined ? { user } : {}), ...(perHost !== undefined ? { perHost } : {}) };
}

export function listOpt(values: OptionValues, key: string): string[] {
  const v = values[key];
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === "string");
  return typeof v === "string" ? [v] : [];
}
