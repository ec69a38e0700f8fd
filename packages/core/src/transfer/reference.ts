import type { Digest } from "../digest.ts";
import { parseDigest } from "../digest.ts";
import { InvalidReferenceError } from "../errors.ts";

/** The parts of `repository[:tag][@digest]`, without any normalisation (the transport does that). */
export interface ReferenceParts {
  repository: string;
  tag?: string;
  digest?: Digest;
}

/**
 * Split a reference into repository, tag and digest. The tag is what follows the last `:` after
 * the last `/` (so `127.0.0.1:5000/demo` has no tag but `127.0.0.1:5000/demo:1` does).
 */
export function splitReference(ref: string): ReferenceParts {
  let rest = ref;
  let digest: Digest | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = parseDigest(rest.slice(at + 1));
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(":");
  if (colon > rest.lastIndexOf("/")) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (tag === "") throw new InvalidReferenceError(`empty tag in reference ${JSON.stringify(ref)}`);
  }
  if (rest === "") throw new InvalidReferenceError(`no repository in reference ${JSON.stringify(ref)}`);
  return { repository: rest, ...(tag !== undefined ? { tag } : {}), ...(digest ? { digest } : {}) };
}
