/**
 * Typed errors. Every error ferry throws extends {@link FerryError} and carries a stable
 * `code`; callers branch on the code (or the `is*` predicates), never on message text.
 */

export const ErrorCodes = [
  "NotFound",
  "AlreadyExists",
  "Locked",
  "SizeMismatch",
  "DigestMismatch",
  "InvalidDigest",
  "InvalidArgument",
  "InvalidReference",
  "InvalidManifest",
  "Aborted",
  "Unauthorized",
  "Denied",
  "TooManyRequests",
  "Unavailable",
  "FailedPrecondition",
  "RangeNotSatisfiable",
  "Network",
  "Registry",
  "Internal",
] as const;

export type ErrorCode = (typeof ErrorCodes)[number];

export interface FerryErrorOptions {
  cause?: unknown;
  /** Extra structured context (digest, ref, url, status…). Never put secrets here. */
  details?: Record<string, unknown>;
}

export class FerryError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: FerryErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.name = `${code}Error`;
    this.details = options.details ?? {};
  }
}

function define<C extends ErrorCode>(code: C) {
  return class extends FerryError {
    declare readonly code: C;
    constructor(message: string, options?: FerryErrorOptions) {
      super(code, message, options);
    }
  };
}

export class NotFoundError extends define("NotFound") {}
export class AlreadyExistsError extends define("AlreadyExists") {}
export class LockedError extends define("Locked") {}
export class SizeMismatchError extends define("SizeMismatch") {}
export class DigestMismatchError extends define("DigestMismatch") {}
export class InvalidDigestError extends define("InvalidDigest") {}
export class InvalidArgumentError extends define("InvalidArgument") {}
export class InvalidReferenceError extends define("InvalidReference") {}
export class InvalidManifestError extends define("InvalidManifest") {}
export class AbortedError extends define("Aborted") {}
export class UnauthorizedError extends define("Unauthorized") {}
export class DeniedError extends define("Denied") {}
export class TooManyRequestsError extends define("TooManyRequests") {}
export class UnavailableError extends define("Unavailable") {}
export class FailedPreconditionError extends define("FailedPrecondition") {}
export class RangeNotSatisfiableError extends define("RangeNotSatisfiable") {}
export class NetworkError extends define("Network") {}
export class InternalError extends define("Internal") {}

/** True when `err` is a ferry error with the given code. */
export function hasCode(err: unknown, code: ErrorCode): err is FerryError {
  return err instanceof FerryError && err.code === code;
}

export const isNotFound = (err: unknown): boolean => hasCode(err, "NotFound");
export const isAlreadyExists = (err: unknown): boolean => hasCode(err, "AlreadyExists");
export const isLocked = (err: unknown): boolean => hasCode(err, "Locked");
export const isAborted = (err: unknown): boolean =>
  hasCode(err, "Aborted") || (err instanceof Error && err.name === "AbortError");

/** Throw an {@link AbortedError} when `signal` is aborted; keeps the abort reason as cause. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError(signal);
}

/**
 * The error Node's streams report when one closed without ending or failing (`pipeline`'s
 * ERR_STREAM_PREMATURE_CLOSE), for stream wrappers that must report the same thing.
 */
export function prematureClose(): Error {
  return Object.assign(new Error("Premature close"), { code: "ERR_STREAM_PREMATURE_CLOSE" });
}

export function abortError(signal: AbortSignal): AbortedError {
  const reason: unknown = signal.reason;
  if (reason instanceof AbortedError) return reason;
  return new AbortedError("operation aborted", { cause: reason });
}
