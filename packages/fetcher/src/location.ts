/**
 * A `Location` header (redirect, upload session) resolved against the URL that answered. A
 * value that does not parse, or names a scheme other than http(s) (`file:`, `data:`…), is the
 * server's error: the request cannot go on and is not worth retrying.
 */
import { FerryError } from "@ferry/core";
import { redactUrl } from "./registry-error.ts";

export function resolveLocation(raw: string, base: URL, context: string): URL {
  let url: URL;
  try {
    url = new URL(raw, base);
  } catch {
    throw new FerryError("Registry", `${context}: malformed Location ${JSON.stringify(raw.slice(0, 200))}`, { details: { url: redactUrl(base) } });
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new FerryError("Registry", `${context}: Location with scheme ${url.protocol} (only http and https are followed)`, {
      details: { url: redactUrl(base) },
    });
  }
  return url;
}
