/** `createRegistry`: the router and the server around the handlers. */
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { FerryError, type ContentStore } from "@ferry/core";
import { MemoryStore } from "@ferry/store-memory";
import { Authenticator, type Access, type AuthOptions, type AuthStats } from "./auth.ts";
import { Faults, type FaultRule } from "./faults.ts";
import { deleteBlob, getBlob } from "./handle-blobs.ts";
import { catalog, listTags, referrers } from "./handle-lists.ts";
import { deleteManifest, getManifest, putManifest } from "./handle-manifests.ts";
import { cancelUpload, finishUpload, patchUpload, startUpload, uploadStatus } from "./handle-uploads.ts";
import { createContext, sendError, sendJson, type RequestContext } from "./http.ts";
import { isValidName } from "./names.ts";
import { OciHttpError } from "./oci-errors.ts";
import { checkName } from "./params.ts";
import type { Services } from "./services.ts";
import type { RegistryStorage } from "./storage.ts";
import { MemoryRegistryStorage } from "./storage-memory.ts";
import { UploadManager } from "./uploads.ts";

export interface RegistryOptions {
  /** Where blobs and manifests live. Default: a new `MemoryStore`. Use `@ferry/store-fs` to persist. */
  store?: ContentStore;
  /** Repository metadata (tags, links, referrers, sessions). Default: in memory. */
  storage?: RegistryStorage;
  /** Authentication. Default: none (everything allowed). */
  auth?: AuthOptions;
  /** Fault rules applied to incoming requests. Default: none. Change later with `setFaults`. */
  faults?: FaultRule[];
  /** Upload sessions idle longer than this are purged, with their data (ms). Default 3 600 000 (1 h). */
  uploadTimeoutMs?: number;
  /** How often the purge runs (ms). Default: a quarter of `uploadTimeoutMs`, at most 60 000. */
  purgeIntervalMs?: number;
  /**
   * An upload's writer (and its running hash) stays open this long after a chunk (ms); meanwhile
   * another server process on the same directory waits for it. 0 releases it right after each
   * request (the next one reopens the ingest and rebuilds the hash). Default 5000.
   */
  writerIdleMs?: number;
  /** How long a request waits for an upload another server process is writing (ms). Default 30 000. */
  lockWaitMs?: number;
  /**
   * `listen()`'s servers close a connection that sends and receives nothing for this long (ms),
   * e.g. a client gone quiet in the middle of a request body. Default 120 000; 0 never.
   */
  idleTimeoutMs?: number;
  /** Accept indexes whose child manifests are not in the repository. Default true. */
  sparseIndexes?: boolean;
  /** Called with unexpected errors (answered 500). Default: ignored. */
  onError?(err: unknown, req: IncomingMessage): void;
}

export interface ListeningRegistry {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** `127.0.0.1:PORT`, the form image references use. */
  host: string;
  port: number;
  close(): Promise<void>;
}

export interface Registry {
  /** A `node:http` request listener, to mount in any server. */
  handler: RequestListener;
  /** Start a server on `port` (default 0: a free one) and `host` (default 127.0.0.1). */
  listen(port?: number, host?: string): Promise<ListeningRegistry>;
  /** Stop every server started by `listen`, close open upload writers and the purge timer. */
  close(): Promise<void>;
  /** Replace the fault rules. */
  setFaults(rules: FaultRule[]): void;
  /** Purge upload sessions idle longer than `maxIdleMs` (default `uploadTimeoutMs`) now. */
  purgeUploads(maxIdleMs?: number): Promise<string[]>;
  readonly store: ContentStore;
  readonly storage: RegistryStorage;
  /** Token counters when Bearer auth is on. */
  readonly authStats: AuthStats | undefined;
}

type Route =
  | { kind: "base" }
  | { kind: "catalog" }
  | { kind: "tags"; name: string }
  | { kind: "manifest"; name: string; ref: string }
  | { kind: "uploads"; name: string }
  | { kind: "upload"; name: string; uuid: string }
  | { kind: "blob"; name: string; ref: string }
  | { kind: "referrers"; name: string; ref: string };

function route(path: string): Route | undefined {
  if (path === "/v2/" || path === "/v2") return { kind: "base" };
  if (path === "/v2/_catalog") return { kind: "catalog" };
  let m: RegExpExecArray | null;
  if ((m = /^\/v2\/(.+)\/tags\/list$/.exec(path))) return { kind: "tags", name: m[1]! };
  if ((m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(path))) return { kind: "manifest", name: m[1]!, ref: m[2]! };
  if ((m = /^\/v2\/(.+)\/blobs\/uploads\/?$/.exec(path))) return { kind: "uploads", name: m[1]! };
  if ((m = /^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/.exec(path))) return { kind: "upload", name: m[1]!, uuid: m[2]! };
  if ((m = /^\/v2\/(.+)\/blobs\/([^/]+)$/.exec(path))) return { kind: "blob", name: m[1]!, ref: m[2]! };
  if ((m = /^\/v2\/(.+)\/referrers\/([^/]+)$/.exec(path))) return { kind: "referrers", name: m[1]!, ref: m[2]! };
  return undefined;
}

/** The access a request needs, for auth. */
function neededAccess(r: Route, method: string, url: URL): Access[] {
  if (r.kind === "base") return [];
  if (r.kind === "catalog") return [{ type: "registry", name: "catalog", actions: ["*"] }];
  const actions = method === "GET" || method === "HEAD" ? ["pull"] : method === "DELETE" ? ["delete"] : ["pull", "push"];
  const out: Access[] = [{ type: "repository", name: r.name, actions }];
  const from = url.searchParams.get("from");
  // An invalid `from` is ignored by the upload itself; it must not reach a challenge header either.
  if (r.kind === "uploads" && url.searchParams.has("mount") && from !== null && from !== r.name && isValidName(from)) {
    out.push({ type: "repository", name: from, actions: ["pull"] });
  }
  return out;
}

function unsupported(method: string): OciHttpError {
  return new OciHttpError("UNSUPPORTED", `method ${method} not allowed here`);
}

async function dispatch(s: Services, ctx: RequestContext, r: Route): Promise<void> {
  const m = ctx.method;
  const read = m === "GET" || m === "HEAD";
  switch (r.kind) {
    case "base":
      if (!read) throw unsupported(m);
      return sendJson(ctx, 200, {});
    case "catalog":
      if (m !== "GET") throw unsupported(m);
      return catalog(s, ctx);
    case "tags":
      if (m !== "GET") throw unsupported(m);
      return listTags(s, ctx, checkName(r.name));
    case "manifest": {
      const name = checkName(r.name);
      if (read) return getManifest(s, ctx, name, r.ref);
      if (m === "PUT") return putManifest(s, ctx, name, r.ref);
      if (m === "DELETE") return deleteManifest(s, ctx, name, r.ref);
      throw unsupported(m);
    }
    case "uploads":
      if (m !== "POST") throw unsupported(m);
      return startUpload(s, ctx, checkName(r.name));
    case "upload": {
      const name = checkName(r.name);
      if (m === "PATCH") return patchUpload(s, ctx, name, r.uuid);
      if (m === "PUT") return finishUpload(s, ctx, name, r.uuid);
      if (m === "GET") return uploadStatus(s, ctx, name, r.uuid);
      if (m === "DELETE") return cancelUpload(s, ctx, name, r.uuid);
      throw unsupported(m);
    }
    case "blob": {
      const name = checkName(r.name);
      if (read) return getBlob(s, ctx, name, r.ref);
      if (m === "DELETE") return deleteBlob(s, ctx, name, r.ref);
      throw unsupported(m);
    }
    case "referrers":
      if (m !== "GET") throw unsupported(m);
      return referrers(s, ctx, checkName(r.name), r.ref);
  }
}

/** Map anything a handler threw to the spec's error form. */
function toHttpError(err: unknown): OciHttpError | undefined {
  if (err instanceof OciHttpError) return err;
  if (err instanceof FerryError) {
    switch (err.code) {
      case "Aborted":
        return undefined;
      case "InvalidDigest":
        return new OciHttpError("DIGEST_INVALID", err.message, { cause: err });
      case "InvalidArgument":
        return new OciHttpError("UNSUPPORTED", err.message, { status: 400, cause: err });
      case "NotFound":
        return new OciHttpError("BLOB_UNKNOWN", err.message, { cause: err });
      case "Locked":
        return new OciHttpError("UNAVAILABLE", err.message, { headers: { "Retry-After": "1" }, cause: err });
      default:
        break;
    }
  }
  return new OciHttpError("UNKNOWN", "internal server error", { cause: err });
}

export function createRegistry(options: RegistryOptions = {}): Registry {
  const store = options.store ?? new MemoryStore();
  const storage = options.storage ?? new MemoryRegistryStorage();
  const uploadTimeoutMs = options.uploadTimeoutMs ?? 3_600_000;
  const idleTimeoutMs = options.idleTimeoutMs ?? 120_000;
  const uploads = new UploadManager(store, storage, {
    writerIdleMs: options.writerIdleMs ?? 5000,
    lockWaitMs: options.lockWaitMs ?? 30_000,
  });
  const services: Services = { store, storage, uploads, sparseIndexes: options.sparseIndexes ?? true };
  const faults = new Faults(options.faults);
  const auth = options.auth === undefined ? undefined : new Authenticator(options.auth);
  const servers = new Set<Server>();

  const purgeEvery = options.purgeIntervalMs ?? Math.min(60_000, Math.max(10, Math.floor(uploadTimeoutMs / 4)));
  let purging = false;
  const purgeTimer = setInterval(() => {
    if (purging) return;
    purging = true;
    uploads
      .purge(uploadTimeoutMs)
      .catch(() => undefined)
      .finally(() => (purging = false));
  }, purgeEvery);
  purgeTimer.unref();

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.setHeader("Docker-Distribution-API-Version", "registry/2.0");
    const ctx = createContext(req, res);
    const path = ctx.url.pathname;
    const method = ctx.method;
    const plan = faults.empty || ctx.malformed ? undefined : faults.plan(method, path);
    ctx.faults = plan;
    try {
      if (ctx.malformed) throw new OciHttpError("UNSUPPORTED", "the request target or the Host header is not a valid URL", { status: 400 });
      if (plan !== undefined && plan.delayMs > 0) await new Promise((r) => setTimeout(r, plan.delayMs));
      if (plan?.status !== undefined) {
        const code = plan.status === 429 ? "TOOMANYREQUESTS" : plan.status === 503 ? "UNAVAILABLE" : "UNKNOWN";
        const headers: Record<string, string> = plan.retryAfter === undefined ? {} : { "Retry-After": String(plan.retryAfter) };
        throw new OciHttpError(code, `fault injected: status ${plan.status}`, { status: plan.status, headers });
      }
      if (auth !== undefined && path === auth.tokenPath && (method === "GET" || method === "POST")) {
        await auth.issue(ctx);
        return;
      }
      const r = route(path);
      if (r === undefined) throw new OciHttpError("NAME_UNKNOWN", "no such endpoint", { status: 404, detail: { path } });
      auth?.check(ctx, neededAccess(r, method, ctx.url));
      await dispatch(services, ctx, r);
    } catch (err) {
      const httpErr = toHttpError(err);
      if (httpErr === undefined || ctx.signal.aborted) {
        if (!res.writableEnded) res.destroy();
        return;
      }
      if (httpErr.ociCode === "UNKNOWN" && !(err instanceof OciHttpError)) options.onError?.(err, req);
      await sendError(ctx, httpErr);
    }
  }

  const handler: RequestListener = (req, res) => {
    void handle(req, res).catch((err: unknown) => {
      // The last resort must not throw itself: an unhandled rejection would end the process.
      try {
        options.onError?.(err, req);
      } catch {
        // the embedder's hook failed: the answer still goes out
      }
      try {
        if (!res.headersSent) res.writeHead(500, { "Content-Length": "0" }).end();
        else res.destroy();
      } catch {
        res.destroy();
      }
    });
  };

  return {
    handler,
    store,
    storage,
    authStats: auth?.stats,
    setFaults: (rules) => faults.set(rules),
    purgeUploads: (maxIdleMs = uploadTimeoutMs) => uploads.purge(maxIdleMs),
    async listen(port = 0, host = "127.0.0.1"): Promise<ListeningRegistry> {
      const server = createServer(handler);
      // Long uploads and slow pulls are normal here: no per-request time limit. A connection
      // silent for `idleTimeoutMs` is closed, though: a client gone quiet mid-PATCH held its
      // upload session (and every later request on it) for ever.
      server.requestTimeout = 0;
      server.timeout = idleTimeoutMs;
      servers.add(server);
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => resolve());
      });
      const addr = server.address() as AddressInfo;
      const hostPort = `${host.includes(":") ? `[${host}]` : host}:${addr.port}`;
      const close = async (): Promise<void> => {
        if (!servers.delete(server)) return;
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
      };
      return { url: `http://${hostPort}`, host: hostPort, port: addr.port, close };
    },
    async close(): Promise<void> {
      clearInterval(purgeTimer);
      await Promise.all(
        [...servers].map(
          (server) =>
            new Promise<void>((resolve) => {
              server.close(() => resolve());
              server.closeAllConnections();
            }),
        ),
      );
      servers.clear();
      await uploads.closeAll();
    },
  };
}
