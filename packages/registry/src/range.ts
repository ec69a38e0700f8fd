/** HTTP `Range` requests on blobs: one `bytes=` range; anything else is served whole. */

export type RangeResult =
  | { kind: "whole" }
  | { kind: "partial"; start: number; end: number }
  | { kind: "unsatisfiable" };

/** Interpret a `Range` header for a blob of `size` bytes (`end` inclusive). */
export function parseRange(header: string | undefined, size: number): RangeResult {
  if (header === undefined) return { kind: "whole" };
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  // Malformed or multi-range requests are ignored, as RFC 9110 allows.
  if (m === null) return { kind: "whole" };
  const [, a = "", b = ""] = m;
  if (a === "" && b === "") return { kind: "whole" };
  if (a === "") {
    const n = Number(b);
    if (n === 0 || size === 0) return { kind: "unsatisfiable" };
    return { kind: "partial", start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  const end = b === "" ? size - 1 : Number(b);
  if (start >= size) return { kind: "unsatisfiable" };
  if (end < start) return { kind: "whole" };
  return { kind: "partial", start, end: Math.min(end, size - 1) };
}
