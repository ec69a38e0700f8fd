/**
 * Exit codes of the `ferry` command, derived from the typed error codes of `@ferry/core` so a
 * script can tell "you typed it wrong" from "it is not there" from "you may not" from "the
 * network failed" without parsing messages.
 */
import { FerryError, type ErrorCode } from "@ferry/core";

export const ExitCode = {
  Ok: 0,
  /** Anything not listed below (digest mismatch, invalid manifest, internal error, …). */
  Failure: 1,
  /** Bad command line: unknown command or option, missing or malformed argument, bad reference or digest. */
  Usage: 2,
  /** The reference, blob, name or ingest does not exist. */
  NotFound: 3,
  /** The registry refused the credentials (401) or the access (403). */
  Auth: 4,
  /** Connection failure, timeout, throttling (429) or an unavailable registry (5xx). */
  Network: 5,
  /** Interrupted by SIGINT/SIGTERM (the shell convention 128 + 2). */
  Interrupted: 130,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

const byCode: Partial<Record<ErrorCode, ExitCodeValue>> = {
  InvalidArgument: ExitCode.Usage,
  InvalidReference: ExitCode.Usage,
  InvalidDigest: ExitCode.Usage,
  NotFound: ExitCode.NotFound,
  Unauthorized: ExitCode.Auth,
  Denied: ExitCode.Auth,
  Network: ExitCode.Network,
  Unavailable: ExitCode.Network,
  TooManyRequests: ExitCode.Network,
  Aborted: ExitCode.Interrupted,
};

/** The exit code for an error thrown by a command. */
export function exitCodeFor(err: unknown): ExitCodeValue {
  if (err instanceof FerryError) return byCode[err.code] ?? ExitCode.Failure;
  return ExitCode.Failure;
}
