/**
 * Map an HTTP error response of a registry to one of core's typed errors. The registry's JSON
 * error codes win over the status when they say something more precise.
 */
import {
  DeniedError,
  DigestMismatchError,
  FerryError,
  NotFoundError,
  RangeNotSatisfiableError,
  SizeMismatchError,
  TooManyRequestsError,
  UnauthorizedError,
  UnavailableError,
  type ErrorCode,
  type FerryErrorOptions,
} from "@ferry/core";
import { redact } from "./auth/redact.ts";

export interface RegistryErrorEntry {
  code: string;
  message?: string;
}

/** Parse `{"errors":[{"code":…,"message":…}]}`; anything else yields an empty list. */
export function parseRegistryErrors(body: string): RegistryErrorEntry[] {
  try {
    const doc = JSON.parse(body) as { errors?: unknown };
    if (!Array.isArray(doc.errors)) return [];
    const out: RegistryErrorEntry[] = [];
    for (const e of doc.errors) {
      if (e && typeof e === "object" && typeof (e as { code?: unknown }).code === "string") {
        const m = (e as { message?: unknown }).message;
        // A registry may echo what it was sent (a token, an Authorization value): scrub before it reaches a message.
        out.push({ code: redact((e as { code: string }).code.slice(0, 100)), message: typeof m === "string" ? redact(m.slice(0, 200)) : undefined });
      }
    }
    return out;
  } catch {
    return [];
  }
}

const CODE_MAP: Record<string, ErrorCode> = {
  BLOB_UNKNOWN: "NotFound",
  BLOB_UPLOAD_UNKNOWN: "NotFound",
  MANIFEST_UNKNOWN: "NotFound",
  NAME_UNKNOWN: "NotFound",
  UNAUTHORIZED: "Unauthorized",
  DENIED: "Denied",
  TOOMANYREQUESTS: "TooManyRequests",
  DIGEST_INVALID: "DigestMismatch",
  SIZE_INVALID: "SizeMismatch",
  UNAVAILABLE: "Unavailable",
};

const ERROR_CLASSES: Partial<Record<ErrorCode, new (message: string, options?: FerryErrorOptions) => FerryError>> = {
  NotFound: NotFoundError,
  Unauthorized: UnauthorizedError,
  Denied: DeniedError,
  TooManyRequests: TooManyRequestsError,
  Unavailable: UnavailableError,
  RangeNotSatisfiable: RangeNotSatisfiableError,
  DigestMismatch: DigestMismatchError,
  SizeMismatch: SizeMismatchError,
};

function codeForStatus(status: number): ErrorCode {
  if (status === 401) return "Unauthorized";
  if (status === 403) return "Denied";
  if (status === 404) return "NotFound";
  if (status === 416) return "RangeNotSatisfiable";
  if (status === 429) return "TooManyRequests";
  if (status === 408 || status >= 500) return "Unavailable";
  return "Registry";
}

export interface ResponseErrorInput {
  status: number;
  method: string;
  /** Already redacted. */
  url: string;
  registryErrors: RegistryErrorEntry[];
  extra?: Record<string, unknown>;
}

/** Build the typed error for a failed response. */
export function registryError(input: ResponseErrorInput): FerryError {
  const { status, method, url, registryErrors } = input;
  let code: ErrorCode = codeForStatus(status);
  for (const e of registryErrors) {
    const mapped = CODE_MAP[e.code];
    if (mapped) {
      code = mapped;
      break;
    }
  }
  const registryCodes = registryErrors.map((e) => e.code);
  const first = registryErrors[0];
  const why = first ? `${first.code}${first.message ? `: ${first.message}` : ""}` : `HTTP ${status}`;
  const message = `${method} ${url}: ${why}`;
  const options = { details: { status, method, url, registryCodes, ...input.extra } };
  // The specific subclass when there is one, so `instanceof NotFoundError` works for callers.
  const Specific = ERROR_CLASSES[code];
  return Specific ? new Specific(message, options) : new FerryError(code, message, options);
}

const KEEP_QUERY = new Set(["digest", "n", "last", "mount", "from", "artifactType"]);

/** A URL safe for messages: no user-info, and query values other than well-known harmless ones hidden. */
export function redactUrl(url: URL | string): string {
  let u: URL;
  try {
    u = new URL(String(url));
  } catch {
    return "<invalid url>";
  }
  u.username = "";
  u.password = "";
  for (const key of [...u.searchParams.keys()]) {
    if (!KEEP_QUERY.has(key)) u.searchParams.set(key, "REDACTED");
  }
  return u.toString();
}
