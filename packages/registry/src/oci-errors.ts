/**
 * The distribution spec's error codes and the typed error the HTTP layer throws to answer with
 * one. Handlers throw {@link OciHttpError}; the router turns it into `{"errors":[…]}`.
 */
import { FerryError, type FerryErrorOptions } from "@ferry/core";

export const OciErrorStatus = {
  BLOB_UNKNOWN: 404,
  BLOB_UPLOAD_INVALID: 400,
  BLOB_UPLOAD_UNKNOWN: 404,
  DIGEST_INVALID: 400,
  MANIFEST_BLOB_UNKNOWN: 400,
  MANIFEST_INVALID: 400,
  MANIFEST_UNKNOWN: 404,
  NAME_INVALID: 400,
  NAME_UNKNOWN: 404,
  SIZE_INVALID: 400,
  UNAUTHORIZED: 401,
  DENIED: 403,
  UNSUPPORTED: 405,
  TOOMANYREQUESTS: 429,
  RANGE_INVALID: 416,
  UNKNOWN: 500,
  UNAVAILABLE: 503,
} as const;

export type OciErrorCode = keyof typeof OciErrorStatus;

export interface OciHttpErrorOptions extends FerryErrorOptions {
  /** HTTP status; defaults to the code's usual status. */
  status?: number;
  /** The `detail` member of the error body. */
  detail?: unknown;
  /** Extra response headers (Range, WWW-Authenticate, Retry-After…). */
  headers?: Record<string, string>;
}

/** An error answered to the client in the distribution spec's JSON form. */
export class OciHttpError extends FerryError {
  readonly ociCode: OciErrorCode;
  readonly status: number;
  readonly detail: unknown;
  readonly headers: Record<string, string>;

  constructor(ociCode: OciErrorCode, message: string, options: OciHttpErrorOptions = {}) {
    super("Registry", message, options);
    this.ociCode = ociCode;
    this.status = options.status ?? OciErrorStatus[ociCode];
    this.detail = options.detail;
    this.headers = options.headers ?? {};
  }

  /** The JSON body: `{"errors":[{"code","message","detail"}]}`. */
  body(): string {
    const entry: Record<string, unknown> = { code: this.ociCode, message: this.message };
    if (this.detail !== undefined) entry.detail = this.detail;
    return JSON.stringify({ errors: [entry] });
  }
}
