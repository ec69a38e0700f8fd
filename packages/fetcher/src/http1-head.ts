/**
 * HTTP/1.1 heads on ferry's own connections (socket reads, keep-alive reads): the request head it
 * writes for a GET, and the response head it reads back, collected as bytes arrive.
 */
import { InvalidArgumentError } from "@ferry/core";

/** A head larger than this is refused (distribution's are under 1 KiB). */
export const MAX_HEAD_BYTES = 64 * 1024;

/** Informational (1xx) answers skipped before the real head; more is a server playing games. */
export const MAX_INFORMATIONAL_HEADS = 16;

/**
 * A response head must be complete this long after the request went out (or within the stall
 * timeout, when that is longer), however its bytes trickle: the stall timeout alone restarts
 * with every byte. The same bound http-client gives undici (`headersTimeout`).
 */
export const HEAD_TIMEOUT_MS = 30_000;

export const headTimeoutMs = (stallTimeoutMs: number): number => Math.max(stallTimeoutMs, HEAD_TIMEOUT_MS);

export interface Head {
  status: number;
  headers: Map<string, string[]>;
}

/**
 * The bytes of `GET url` with `headers` (names in lower case) plus `host` and `connection`.
 * Names and values are checked first: they go to the wire as they are, and a CR or LF would
 * end the header (request splitting).
 */
export function getRequestHead(url: URL, headers: Record<string, string>, connection: "close" | "keep-alive"): string {
  const all: Record<string, string> = { ...headers, host: url.host, connection };
  const lines = [`GET ${url.pathname}${url.search} HTTP/1.1`];
  for (const [k, v] of Object.entries(all)) {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(k) || /[\r\n\0]/.test(v)) {
      throw new InvalidArgumentError(`invalid HTTP header ${JSON.stringify(k)}: ${JSON.stringify(v.slice(0, 40))}`);
    }
    lines.push(`${k}: ${v}`);
  }
  return `${lines.join("\r\n")}\r\n\r\n`;
}

/** Status line and headers of an HTTP/1.x response head (names lower-cased). */
export function parseHead(text: string): Head | undefined {
  const lines = text.split("\r\n");
  const m = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(lines[0] ?? "");
  if (!m) return undefined;
  const headers = new Map<string, string[]>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon <= 0) return undefined;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    const list = headers.get(name);
    if (list) list.push(value);
    else headers.set(name, [value]);
  }
  return { status: Number(m[1]), headers };
}

/**
 * Collects a response head from the bytes as they arrive, skipping informational answers (103
 * Early Hints, a stray 100: the real head follows).
 */
export class HeadReader {
  #parts: Buffer[] = [];
  #bytes = 0;
  /** The last bytes already searched (up to 3): the blank line may straddle two reads. */
  #tail: Buffer = Buffer.alloc(0);
  #informational = 0;

  /**
   * Feed bytes. Undefined while the head is incomplete; else the head (undefined when it does
   * not parse) and the bytes after it. Throws when the head grows over {@link MAX_HEAD_BYTES},
   * or after {@link MAX_INFORMATIONAL_HEADS} informational answers.
   */
  push(chunk: Buffer): { head: Head | undefined; rest: Buffer } | undefined {
    for (;;) {
      // Only the new bytes (and the few before them) are searched: a head that trickles in
      // byte by byte costs linear time, not quadratic.
      const window = this.#tail.byteLength === 0 ? chunk : Buffer.concat([this.#tail, chunk]);
      const found = window.indexOf("\r\n\r\n");
      const end = found < 0 ? -1 : this.#bytes - this.#tail.byteLength + found;
      this.#parts.push(chunk);
      this.#bytes += chunk.byteLength;
      if (end < 0 ? this.#bytes > MAX_HEAD_BYTES : end > MAX_HEAD_BYTES) throw new Error(`response head over ${MAX_HEAD_BYTES} bytes`);
      if (end < 0) {
        this.#tail = Buffer.from(window.subarray(Math.max(0, window.byteLength - 3)));
        return undefined;
      }
      const all = this.#parts.length === 1 ? chunk : Buffer.concat(this.#parts);
      const head = parseHead(all.subarray(0, end).toString("latin1"));
      const rest = all.subarray(end + 4);
      this.#parts = [];
      this.#bytes = 0;
      this.#tail = Buffer.alloc(0);
      if (head === undefined || head.status < 100 || head.status >= 200 || head.status === 101) return { head, rest };
      if (++this.#informational > MAX_INFORMATIONAL_HEADS) throw new Error(`more than ${MAX_INFORMATIONAL_HEADS} informational answers before the response head`);
      if (rest.byteLength === 0) return undefined;
      chunk = Buffer.from(rest);
    }
  }
}
