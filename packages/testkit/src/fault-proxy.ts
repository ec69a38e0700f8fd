/**
 * An HTTP proxy in front of a registry that injects the failures real networks and registries
 * produce: dropped connections, ignored Range, throttling statuses, short or corrupted bodies,
 * latency and slow links. Bodies stream both ways; nothing is buffered.
 */
import { Agent, createServer, type ClientRequest, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { pipeline } from "node:stream/promises";
import { InvalidArgumentError, NetworkError } from "@ferry/core";

/**
 * One fault. A request uses the first rule whose `method` and `path` match and whose `count`
 * is not used up; the rule's faults then all apply to it. Unmatched requests pass through.
 */
export interface FaultRule {
  /** HTTP method(s) to match, case-insensitive. Default: any. */
  method?: string | string[];
  /** Pattern tested against the request target (path and query). Default: any. */
  path?: RegExp | string;
  /** Apply to the first N matching requests only. Default: every matching request. */
  count?: number;
  /** Wait this long before forwarding the request. */
  delayMs?: number;
  /**
   * Answer with this status without contacting the upstream (the request body is drained).
   * The body is empty unless `body` is set.
   */
  status?: number;
  /** `Retry-After` header value (seconds or an HTTP date) for a `status` answer. */
  retryAfter?: number | string;
  /**
   * Body of a `status` answer: `"json"` for a distribution-style `{"errors":[…]}` document,
   * another string sent as is, or an object sent as JSON. Default: empty.
   */
  body?: "json" | string | Record<string, unknown>;
  /** Extra response headers (for `status` answers and forwarded ones alike). */
  headers?: Record<string, string>;
  /** Remove `Range`/`If-Range` before forwarding, so the upstream answers 200 with everything. */
  ignoreRange?: boolean;
  /**
   * Forward only the first N bytes of the request body (an upload) to the upstream, then destroy
   * both connections: the upstream sees an interrupted upload, the client a dropped connection.
   */
  dropRequestAfterBytes?: number;
  /** Destroy the connection without any response (the client sees a reset or "socket hang up"). */
  hangUp?: boolean;
  /**
   * Forward headers and the first N body bytes, then send nothing more while keeping the
   * connection open, until the client gives up or the proxy stops: a stalled transfer.
   */
  stallAfterBytes?: number;
  /** Forward headers and the first N body bytes, then destroy the connection. */
  dropAfterBytes?: number;
  /**
   * Forward headers (with the upstream's full Content-Length) and the first N body bytes, then
   * end the response cleanly and close the connection: the client sees a short body at EOF.
   */
  truncateBody?: number;
  /** Flip every bit of the response body byte at this offset (0-based). */
  corruptByteAt?: number;
  /** Send the response body no faster than this. */
  rateBytesPerSec?: number;
}

/** What the proxy saw; `status` is what the client got (0 when the connection died first). */
export interface ProxyLogEntry {
  method: string;
  path: string;
  status: number;
  /** Index of the rule that matched (in the current rule list), if any. */
  rule?: number;
  /** Response body bytes sent to the client. */
  bytes: number;
  /** Which faults were applied, e.g. `["status"]`, `["dropAfterBytes"]`. */
  faults: string[];
}

export interface StartFaultProxyOptions {
  /** Origin of the upstream, e.g. `http://127.0.0.1:5000`. */
  target: string;
  /** Initial rules. Default: none (pure pass-through). */
  rules?: FaultRule[];
}

export interface FaultProxy {
  /** `http://127.0.0.1:PORT` of the proxy. */
  url: string;
  /** `127.0.0.1:PORT`, for image references. */
  host: string;
  port: number;
  /** Every request, in arrival order (entries are updated as bodies flow). Clear with `requests.length = 0`. */
  readonly requests: ProxyLogEntry[];
  /** Requests being answered now (from arrival until the response ends or the connection goes). */
  readonly inFlight: number;
  /** The most requests in flight at once since the start or the last {@link resetPeak}. */
  readonly peakInFlight: number;
  resetPeak(): void;
  /** Replace the rules (their counts start afresh). */
  setRules(rules: FaultRule[]): void;
  /** Close the listener and every open connection. */
  stop(): Promise<void>;
}

// Hop-by-hop headers (RFC 9110 §7.6.1) are per connection and never forwarded.
// `expect` is answered by this server already.
const HOP = new Set(["expect", "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade"]);

interface ActiveRule {
  rule: FaultRule;
  path?: RegExp;
  methods?: Set<string>;
  left: number;
}

function compile(rules: FaultRule[]): ActiveRule[] {
  return rules.map((rule) => {
    for (const k of ["count", "dropAfterBytes", "dropRequestAfterBytes", "stallAfterBytes", "truncateBody", "corruptByteAt", "delayMs"] as const) {
      const v = rule[k];
      if (v !== undefined && (!Number.isInteger(v) || v < 0)) throw new InvalidArgumentError(`fault rule ${k} must be an integer >= 0, got ${v}`);
    }
    if (rule.rateBytesPerSec !== undefined && !(rule.rateBytesPerSec > 0)) throw new InvalidArgumentError("rateBytesPerSec must be > 0");
    const a: ActiveRule = { rule, left: rule.count ?? Infinity };
    // A copy without g/y: those make RegExp.test stateful, so every other request would miss.
    if (rule.path !== undefined) a.path = typeof rule.path === "string" ? new RegExp(rule.path) : new RegExp(rule.path.source, rule.path.flags.replace(/[gy]/g, ""));
    if (rule.method !== undefined) a.methods = new Set((Array.isArray(rule.method) ? rule.method : [rule.method]).map((m) => m.toUpperCase()));
    return a;
  });
}

/** Start a fault-injecting proxy on a free 127.0.0.1 port in front of `options.target`. */
export async function startFaultProxy(options: StartFaultProxyOptions): Promise<FaultProxy> {
  const target = new URL(options.target);
  if (target.protocol !== "http:") throw new InvalidArgumentError(`fault proxy target must be http://, got ${options.target}`);
  let active = compile(options.rules ?? []);
  const requests: ProxyLogEntry[] = [];
  // A fresh upstream connection per request: a reused socket the registry just closed would
  // surface as a spurious 502 in someone's test.
  const agent = new Agent({ keepAlive: false });
  let selfOrigin = "";
  let inFlight = 0;
  let peakInFlight = 0;

  const server = createServer((req, res) => {
    const entry: ProxyLogEntry = { method: req.method ?? "GET", path: req.url ?? "/", status: 0, bytes: 0, faults: [] };
    requests.push(entry);
    inFlight++;
    peakInFlight = Math.max(peakInFlight, inFlight);
    // Done when the last byte is handed to the kernel (finish) or the connection goes (close).
    let done = false;
    const leave = (): void => {
      if (done) return;
      done = true;
      inFlight--;
    };
    res.once("finish", leave);
    res.once("close", leave);
    const idx = active.findIndex((a) => a.left > 0 && (!a.methods || a.methods.has(entry.method)) && (!a.path || a.path.test(entry.path)));
    let rule: FaultRule = {};
    if (idx >= 0) {
      active[idx]!.left--;
      rule = active[idx]!.rule;
      entry.rule = idx;
    }
    handle(req, res, rule, entry).catch(() => {
      // The client or upstream went away mid-stream; make sure nothing lingers.
      res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse, rule: FaultRule, entry: ProxyLogEntry): Promise<void> {
    if (rule.delayMs) {
      entry.faults.push("delayMs");
      await sleep(rule.delayMs);
    }
    if (rule.hangUp) {
      entry.faults.push("hangUp");
      req.socket.destroy();
      return;
    }
    if (rule.status !== undefined) {
      entry.faults.push("status");
      req.resume(); // drain an upload body so the client can read our answer
      const headers: Record<string, string | number> = { ...rule.headers };
      if (rule.retryAfter !== undefined) headers["retry-after"] = String(rule.retryAfter);
      let body = "";
      if (rule.body === "json") {
        body = JSON.stringify({ errors: [{ code: errorCode(rule.status), message: `injected ${rule.status}`, detail: null }] });
        headers["content-type"] = "application/json; charset=utf-8";
      } else if (typeof rule.body === "string") {
        body = rule.body;
      } else if (rule.body !== undefined) {
        body = JSON.stringify(rule.body);
        headers["content-type"] = "application/json; charset=utf-8";
      }
      headers["content-length"] = Buffer.byteLength(body);
      entry.status = rule.status;
      res.writeHead(rule.status, headers);
      entry.bytes = Buffer.byteLength(body);
      res.end(body);
      return;
    }

    const headers = forwardHeaders(req.headers);
    headers.host = target.host;
    if (rule.ignoreRange && (headers.range !== undefined || headers["if-range"] !== undefined)) {
      entry.faults.push("ignoreRange");
      delete headers.range;
      delete headers["if-range"];
    }
    let dropped = false;
    const upstream = await new Promise<IncomingMessage>((resolve, reject) => {
      const up = httpRequest({
        agent,
        host: target.hostname,
        port: target.port || 80,
        method: req.method,
        path: req.url,
        headers,
      });
      up.once("response", resolve);
      up.once("error", reject);
      res.once("close", () => {
        if (!res.writableFinished) up.destroy();
      });
      if (rule.dropRequestAfterBytes === undefined) {
        req.pipe(up);
      } else {
        entry.faults.push("dropRequestAfterBytes");
        void forwardRequestPrefix(req, up, rule.dropRequestAfterBytes).then((cut) => {
          if (!cut) return;
          // Give the upstream a moment to take what was sent before the cut.
          setTimeout(() => {
            dropped = true;
            up.destroy();
            res.socket?.destroy();
            res.destroy();
            reject(new NetworkError("request body dropped by fault rule"));
          }, 50);
        }, reject);
      }
    }).catch((e: unknown) => {
      if (dropped) return undefined;
      entry.status = 502;
      if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" });
      res.end(`fault proxy: upstream error: ${(e as Error).message}`);
      return undefined;
    });
    if (upstream === undefined) return;

    const out = forwardHeaders(upstream.headers);
    const loc = upstream.headers.location;
    if (typeof loc === "string" && loc.startsWith(target.origin)) out.location = selfOrigin + loc.slice(target.origin.length);
    Object.assign(out, rule.headers);
    const cut = rule.truncateBody ?? rule.dropAfterBytes ?? rule.stallAfterBytes;
    if (rule.truncateBody !== undefined) {
      entry.faults.push("truncateBody");
      out.connection = "close";
    }
    if (rule.dropAfterBytes !== undefined) entry.faults.push("dropAfterBytes");
    if (rule.stallAfterBytes !== undefined) entry.faults.push("stallAfterBytes");
    if (rule.corruptByteAt !== undefined) entry.faults.push("corruptByteAt");
    if (rule.rateBytesPerSec !== undefined) entry.faults.push("rateBytesPerSec");
    entry.status = upstream.statusCode ?? 502;
    res.writeHead(entry.status, upstream.statusMessage, out);
    res.flushHeaders();

    if (cut === undefined && rule.corruptByteAt === undefined && rule.rateBytesPerSec === undefined) {
      // Nothing to do to the body: let the streams move it (noticeably faster than a JS loop).
      upstream.on("data", (c: Buffer) => (entry.bytes += c.length));
      await pipeline(upstream, res);
      return;
    }
    const limiter = rule.rateBytesPerSec === undefined ? undefined : new RateLimiter(rule.rateBytesPerSec);
    let offset = 0;
    for await (const raw of upstream as AsyncIterable<Buffer>) {
      let chunk = raw;
      if (cut !== undefined && offset + chunk.length > cut) chunk = chunk.subarray(0, cut - offset);
      if (rule.corruptByteAt !== undefined && rule.corruptByteAt >= offset && rule.corruptByteAt < offset + chunk.length) {
        chunk = Buffer.from(chunk); // copy: never mutate a buffer the stream may reuse
        chunk[rule.corruptByteAt - offset]! ^= 0xff;
      }
      if (limiter) {
        // Slice so a big chunk does not arrive as one burst after a long pause.
        for (let i = 0; i < chunk.length; i += limiter.slice) {
          const part = chunk.subarray(i, i + limiter.slice);
          await limiter.take(part.length);
          await write(res, part);
          entry.bytes += part.length;
        }
      } else if (chunk.length > 0) {
        await write(res, chunk);
        entry.bytes += chunk.length;
      }
      offset += chunk.length;
      if (cut !== undefined && offset >= cut) break;
    }
    if (cut !== undefined && offset >= cut && rule.dropAfterBytes !== undefined) {
      upstream.destroy();
      await flushed(res);
      res.socket?.destroy();
      res.destroy();
      return;
    }
    if (cut !== undefined && offset >= cut && rule.stallAfterBytes !== undefined) {
      upstream.destroy();
      // Hold the response open; the client's own timeout (or stop()) ends it.
      if (!res.destroyed) await new Promise<void>((resolve) => res.once("close", () => resolve()));
      return;
    }
    if (cut !== undefined && offset >= cut) upstream.destroy();
    // Ending short of Content-Length is the point of truncateBody; `connection: close` then
    // closes the socket so the client sees EOF.
    res.end();
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  selfOrigin = `http://127.0.0.1:${port}`;
  let stopping: Promise<void> | undefined;
  return {
    url: selfOrigin,
    host: `127.0.0.1:${port}`,
    port,
    requests,
    get inFlight(): number {
      return inFlight;
    },
    get peakInFlight(): number {
      return peakInFlight;
    },
    resetPeak(): void {
      peakInFlight = inFlight;
    },
    setRules(rules: FaultRule[]): void {
      active = compile(rules);
    },
    stop(): Promise<void> {
      return (stopping ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        agent.destroy();
      }));
    },
  };
}

/**
 * Forward the request body to the upstream until `limit` bytes went out; then stop reading and
 * resolve true once those bytes reached the socket. Resolves false (upload finished normally)
 * when the body is shorter than `limit`.
 */
function forwardRequestPrefix(req: IncomingMessage, up: ClientRequest, limit: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    let sent = 0;
    if (limit === 0) {
      req.pause();
      up.flushHeaders();
      resolve(true);
      return;
    }
    const onData = (c: Buffer): void => {
      const part = c.subarray(0, limit - sent);
      sent += part.length;
      if (sent < limit) {
        if (!up.write(part)) {
          req.pause();
          up.once("drain", () => req.resume());
        }
        return;
      }
      req.off("data", onData);
      req.off("end", onEnd);
      req.pause();
      up.write(part, () => resolve(true));
    };
    const onEnd = (): void => {
      up.end();
      resolve(false);
    };
    req.on("data", onData);
    req.once("end", onEnd);
    req.once("error", reject);
  });
}

function forwardHeaders(h: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const connectionTokens = new Set(String(h.connection ?? "").toLowerCase().split(",").map((s) => s.trim()));
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined || HOP.has(k) || connectionTokens.has(k)) continue;
    out[k] = v;
  }
  return out;
}

function errorCode(status: number): string {
  switch (status) {
    case 401:
      return "UNAUTHORIZED";
    case 403:
      return "DENIED";
    case 404:
      return "NAME_UNKNOWN";
    case 429:
      return "TOOMANYREQUESTS";
    default:
      return "UNAVAILABLE";
  }
}

function write(res: ServerResponse, chunk: Buffer): Promise<void> {
  if (res.destroyed) return Promise.reject(new NetworkError("client went away"));
  return new Promise((resolve, reject) => {
    if (res.write(chunk)) resolve();
    else {
      const onDrain = (): void => {
        res.off("close", onClose);
        resolve();
      };
      const onClose = (): void => {
        res.off("drain", onDrain);
        reject(new NetworkError("client went away"));
      };
      res.once("drain", onDrain);
      res.once("close", onClose);
    }
  });
}

/** Resolve once what was written has been handed to the socket (so the client gets those bytes). */
function flushed(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const sock = res.socket;
    if (!sock || sock.writableLength === 0) return resolve();
    sock.write("", () => resolve());
  });
}

/** Paces bytes to an average rate. */
class RateLimiter {
  readonly slice: number;
  #start = Date.now();
  #sent = 0;
  constructor(readonly bytesPerSec: number) {
    // About 20 slices a second, at least 1 byte, at most 64 KiB.
    this.slice = Math.max(1, Math.min(65_536, Math.floor(bytesPerSec / 20)));
  }
  async take(n: number): Promise<void> {
    this.#sent += n;
    const due = this.#start + (this.#sent / this.bytesPerSec) * 1000;
    const wait = due - Date.now();
    if (wait > 0) await sleep(wait);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
