/**
 * Fault injection for tests of clients: rules matched by method and path, each applying to the
 * first `count` matching requests (or all). The registry applies them around its own handlers, so
 * a test needs no proxy.
 */
import { Transform, type TransformCallback } from "node:stream";
import { NetworkError } from "@ferry/core";

export interface FaultRule {
  /** HTTP method to match (`GET`, `PATCH`…); default any. */
  method?: string;
  /** Path (without query) to match; a string is compiled as a regular expression. Default any. */
  path?: RegExp | string;
  /** Apply to this many matching requests, then retire. Default: every matching request. */
  count?: number;
  /** Answer with this status (429, 500, 503…) instead of handling the request. */
  status?: number;
  /** `Retry-After` seconds sent with `status`. Default none. */
  retryAfter?: number;
  /**
   * Destroy the connection after this many body bytes: of the response for GET/HEAD, of the
   * request body for requests that carry one (PATCH/PUT/POST), so the bytes before it still land.
   */
  dropAfterBytes?: number;
  /** Handle the request as if it had no `Range` header (answers 200 with the whole blob). */
  ignoreRange?: boolean;
  /** Send response bodies at this many bytes per second. */
  rateBytesPerSec?: number;
  /** Flip every bit of the response body byte at this offset. */
  corruptByteAt?: number;
  /** Wait this long before handling the request. */
  delayMs?: number;
}

/** What the matching rules ask of one request. */
export interface FaultPlan {
  status?: number;
  retryAfter?: number;
  ignoreRange: boolean;
  delayMs: number;
  /** Transforms for the response body, in order. */
  response: Array<() => Transform>;
  /** Bytes of request body to accept before dropping the connection. */
  dropRequestAfter?: number;
}

interface ActiveRule {
  rule: FaultRule;
  path?: RegExp;
  remaining: number;
}

/** The registry's live fault rules. */
export class Faults {
  #rules: ActiveRule[] = [];

  constructor(rules: FaultRule[] = []) {
    this.set(rules);
  }

  /** Replace every rule (counts start again). */
  set(rules: FaultRule[]): void {
    this.#rules = rules.map((rule) => ({
      rule,
      path: rule.path === undefined ? undefined : typeof rule.path === "string" ? new RegExp(rule.path) : rule.path,
      remaining: rule.count ?? Number.POSITIVE_INFINITY,
    }));
  }

  get empty(): boolean {
    return this.#rules.length === 0;
  }

  /** Consume the rules matching this request and return what to do, or undefined for nothing. */
  plan(method: string, path: string): FaultPlan | undefined {
    let plan: FaultPlan | undefined;
    const hasBody = method === "PATCH" || method === "PUT" || method === "POST";
    for (const active of this.#rules) {
      const { rule } = active;
      if (active.remaining <= 0) continue;
      if (rule.method !== undefined && rule.method.toUpperCase() !== method) continue;
      if (active.path !== undefined && !active.path.test(path)) continue;
      active.remaining--;
      plan ??= { ignoreRange: false, delayMs: 0, response: [] };
      if (rule.status !== undefined) {
        plan.status = rule.status;
        plan.retryAfter = rule.retryAfter;
      }
      if (rule.ignoreRange === true) plan.ignoreRange = true;
      if (rule.delayMs !== undefined) plan.delayMs += rule.delayMs;
      if (rule.corruptByteAt !== undefined) {
        const at = rule.corruptByteAt;
        plan.response.push(() => corruptAt(at));
      }
      if (rule.rateBytesPerSec !== undefined) {
        const rate = rule.rateBytesPerSec;
        plan.response.push(() => throttle(rate));
      }
      if (rule.dropAfterBytes !== undefined) {
        if (hasBody) plan.dropRequestAfter = rule.dropAfterBytes;
        else {
          const n = rule.dropAfterBytes;
          plan.response.push(() => limitTo(n));
        }
      }
    }
    return plan;
  }
}

/** Pass the first `n` bytes, then fail (the caller destroys the socket on that error). */
export function limitTo(n: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      const room = n - seen;
      if (room >= chunk.length) {
        seen += chunk.length;
        cb(null, chunk);
        return;
      }
      if (room > 0) this.push(chunk.subarray(0, room));
      seen = n;
      // Let the partial chunk reach the socket before failing the pipeline.
      setImmediate(() => cb(new NetworkError(`connection dropped after ${n} bytes by fault rule`)));
    },
  });
}

function corruptAt(at: number): Transform {
  let pos = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      if (at >= pos && at < pos + chunk.length) {
        const copy = Buffer.from(chunk);
        copy[at - pos] = (copy[at - pos] ?? 0) ^ 0xff;
        chunk = copy;
      }
      pos += chunk.length;
      cb(null, chunk);
    },
  });
}

function throttle(bytesPerSec: number): Transform {
  const start = Date.now();
  let sent = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      const pieces: Buffer[] = [];
      // Small pieces so the rate is smooth even for big chunks.
      const piece = Math.max(1, Math.min(64 * 1024, Math.floor(bytesPerSec / 10)));
      for (let i = 0; i < chunk.length; i += piece) pieces.push(chunk.subarray(i, i + piece));
      const next = (): void => {
        const p = pieces.shift();
        if (p === undefined) return cb();
        sent += p.length;
        this.push(p);
        const due = start + (sent / bytesPerSec) * 1000;
        setTimeout(next, Math.max(0, due - Date.now()));
      };
      next();
    },
  });
}
