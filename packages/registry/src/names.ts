/** Repository name and tag grammar of the OCI distribution spec. */

const COMPONENT = "[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*";
const NAME_RE = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);

/** Longest repository name accepted (distribution's limit). */
export const MaxNameLength = 255;

export function isValidName(name: string): boolean {
  return name.length <= MaxNameLength && NAME_RE.test(name);
}

/** The tag grammar lives in core, shared with the client. */
export { isValidTag } from "@ferry/core";
