/**
 * The tag grammar of the OCI distribution spec (`[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`), shared by
 * the client (references, pushes, tag listings) and the embedded registry. A string outside it
 * must not reach a URL path: `../other/manifests/x` would address another repository.
 */
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

export function isValidTag(tag: string): boolean {
  return TAG.test(tag);
}
