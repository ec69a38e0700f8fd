/** Validation of path and query parameters, answered with the spec's error codes. */
import { isDigest, type Digest } from "@ferry/core";
import { isValidName, isValidTag } from "./names.ts";
import { OciHttpError } from "./oci-errors.ts";

export function checkName(name: string): string {
  if (!isValidName(name)) {
    throw new OciHttpError("NAME_INVALID", "invalid repository name", { detail: { name } });
  }
  return name;
}

export function checkDigest(value: string | null | undefined): Digest {
  if (value === null || value === undefined || !isDigest(value)) {
    throw new OciHttpError("DIGEST_INVALID", "invalid or unsupported digest", { detail: { digest: value ?? null } });
  }
  return value;
}

/** A manifest reference: a digest, or a tag. */
export function checkReference(ref: string): { digest: Digest } | { tag: string } {
  if (ref.includes(":")) return { digest: checkDigest(ref) };
  if (!isValidTag(ref)) throw new OciHttpError("MANIFEST_INVALID", "invalid tag", { status: 400, detail: { tag: ref } });
  return { tag: ref };
}

/** `n` of a paginated listing: a non-negative integer, or undefined. */
export function pageSize(value: string | null): number | undefined {
  if (value === null || value === "") return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) {
    throw new OciHttpError("UNSUPPORTED", "invalid page size n", { status: 400, detail: { n: value } });
  }
  return n;
}
