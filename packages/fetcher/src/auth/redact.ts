/**
 * Secret scrubbing for anything that may end up in an error message or a log line.
 */

const MARK = "[REDACTED]";

// `Authorization: …` / `Proxy-Authorization: …` header lines, whatever the scheme.
const HEADER_LINE = /\b((?:proxy-)?authorization)(["']?\s*[:=]\s*)("?)[^\r\n"]*\3/gi;
// `Bearer xyz`, `Basic xyz` credentials inline, but not a challenge's `Basic realm="…"`.
const SCHEME_CREDENTIAL = /\b(bearer|basic)(\s+)(?![A-Za-z0-9\-._~+/=]*\s*=\s*["A-Za-z0-9])[A-Za-z0-9\-._~+/]+=*/gi;
// `token=…`, `"access_token": "…"`, `password: …` and friends, in query strings, forms and JSON.
const SECRET_FIELD =
  /\b((?:access_|refresh_|id_|registry|identity_?)?token|password|passwd|secret|client_secret|auth|identitytoken|registrytoken)(["']?\s*[:=]\s*)(["']?)([^"'&\s,;}]*)/gi;
// `https://user:pass@host`.
const URL_USERINFO = /(\b[a-z][a-z0-9+.-]*:\/\/)[^/@\s]+@/gi;

/**
 * Remove credentials from `text`: `Authorization` header values, `Bearer`/`Basic` credentials,
 * `token=`, `access_token`, `refresh_token`, `password`, `secret`, `auth` fields (query, form,
 * JSON) and URL user-info. What is left is safe to show.
 */
export function redact(text: string): string {
  return text
    .replace(HEADER_LINE, (_m, name: string, sep: string, q: string) => `${name}${sep}${q}${MARK}${q}`)
    .replace(SCHEME_CREDENTIAL, (_m, scheme: string, ws: string) => `${scheme}${ws}${MARK}`)
    .replace(SECRET_FIELD, (m, name: string, sep: string, q: string, value: string) => (value === "" || value === MARK ? m : `${name}${sep}${q}${MARK}`))
    .replace(URL_USERINFO, (_m, scheme: string) => `${scheme}${MARK}@`);
}
