/**
 * The registry resolver: turns references into descriptors (HEAD with the full Accept list, GET
 * when HEAD cannot be trusted, digest refs verified by hashing), and hands out fetchers and
 * pushers for a repository. Also tags, catalog, referrers, manifest fetch and delete.
 */
import {
  abortError,
  DigestMismatchError,
  digestAlgorithm,
  digestOf,
  FerryError,
  InvalidManifestError,
  NetworkError,
  isDigest,
  isManifestLike,
  isValidTag,
  ManifestAcceptTypes,
  MediaTypes,
  NotFoundError,
  parseDigest,
  type Descriptor,
  type Digest,
  type Resolved,
  type Resolver,
  type TransferHooks,
} from "@ferry/core";
import type { TransportContext } from "./context.ts";
import { errorRank, hostsFor, RepositoryEndpoint } from "./endpoint.ts";
import { createAuthorizer } from "./auth/authorizer.ts";
import { RegistryFetcher } from "./fetcher.ts";
import { discard, HttpClient, type HttpResponse } from "./http-client.ts";
import { DEFAULT_MAX_MANIFEST_BYTES, DEFAULT_SOCKET_READ_MIN_BYTES, type AuthScope, type HostCapability, type RegistryResolverOptions } from "./options.ts";
import { RegistryPusher } from "./pusher.ts";
import { readCapped } from "./read-body.ts";
import { parseReference, type Reference } from "./reference.ts";
import { redactUrl } from "./registry-error.ts";

const ACCEPT_MANIFESTS = ManifestAcceptTypes.join(", ");

export interface SignalOption {
  signal?: AbortSignal;
}

export interface ListOptions extends SignalOption {
  /** Page size asked of the registry (`n`). Default: the registry's choice. */
  n?: number;
  /** Start after this entry (`last`). */
  last?: string;
  /** Stop after this many entries in total. Default 100 000 (a cap against endless listings). */
  limit?: number;
}

export interface ReferrersOptions extends SignalOption {
  /** Keep only referrers of this artifact type. */
  artifactType?: string;
}

export interface FetchedManifest extends Resolved {
  /** The manifest's raw bytes (hashing to `descriptor.digest`). */
  data: Uint8Array;
}

const DEFAULT_LIST_LIMIT = 100_000;

/** Strip parameters: `application/json; charset=utf-8` → `application/json`. */
function bareType(ct: string | undefined): string | undefined {
  const t = ct?.split(";")[0]?.trim().toLowerCase();
  return t ? t : undefined;
}

/** The media type of a manifest: a specific Content-Type wins, else the document's own field. */
export function manifestMediaType(contentType: string | undefined, data: Uint8Array): string {
  const ct = bareType(contentType);
  if (ct && isManifestLike(ct)) return ct;
  try {
    const doc = JSON.parse(Buffer.from(data).toString("utf8")) as { mediaType?: unknown; manifests?: unknown };
    if (typeof doc.mediaType === "string" && doc.mediaType) return doc.mediaType;
    if (Array.isArray(doc.manifests)) return MediaTypes.OciIndex;
  } catch {
    // not JSON: let the Content-Type stand
  }
  return ct && ct !== "application/json" && ct !== "application/octet-stream" && ct !== "text/plain" ? ct : MediaTypes.OciManifest;
}

/** The `next` target of a `Link` header, resolved against `base`. */
export function parseNextLink(headers: string[], base: URL): URL | undefined {
  for (const h of headers) {
    for (const part of h.split(/,(?=\s*<)/)) {
      const m = /<([^>]*)>\s*(.*)$/.exec(part.trim());
      if (m && /rel="?next"?/i.test(m[2] ?? "")) return new URL(m[1] as string, base);
    }
  }
  return undefined;
}

export class RegistryResolver implements Resolver {
  readonly #options: RegistryResolverOptions;
  readonly #ctx: TransportContext;

  constructor(options: RegistryResolverOptions = {}) {
    this.#options = options;
    const authorizer =
      options.authorizer ??
      createAuthorizer({ credentials: options.credentials, dispatcher: options.dispatcher, insecure: options.insecure, userAgent: options.userAgent });
    const http = new HttpClient({
      dispatcher: options.dispatcher,
      authorizer,
      concurrencyPerHost: options.concurrencyPerHost,
      retry: options.retry,
      stallTimeoutMs: options.stallTimeoutMs,
      userAgent: options.userAgent,
      socketReads: options.socketReadMinBytes !== Infinity,
      pooledReads: options.keepAliveReads !== false,
    });
    this.#ctx = {
      http,
      maxManifestBytes: options.maxManifestBytes ?? DEFAULT_MAX_MANIFEST_BYTES,
      parallelRangeThreshold: options.parallelRangeThreshold ?? Number.POSITIVE_INFINITY,
      rangeChunkSize: options.rangeChunkSize ?? 16 * 1024 * 1024,
      parallelRanges: options.parallelRanges ?? 4,
      socketReadMinBytes: options.socketReadMinBytes ?? DEFAULT_SOCKET_READ_MIN_BYTES,
      uploadChunkSize: options.uploadChunkSize,
      minUploadChunkSize: options.minUploadChunkSize ?? 5 * 1024 * 1024,
    };
  }

  /** The shared transport settings (for {@link fetchToStore} and tests). */
  get context(): TransportContext {
    return this.#ctx;
  }

  /** Close the connection pool (when the resolver created it). */
  close(): Promise<void> {
    return this.#ctx.http.close();
  }

  #endpoints(ref: Reference, capability: HostCapability): RepositoryEndpoint[] {
    return hostsFor(ref, capability, this.#options).map((h) => new RepositoryEndpoint(h, ref.repository));
  }

  /** Try `fn` on each host in order; report the error that got furthest. */
  async #each<T>(eps: RepositoryEndpoint[], signal: AbortSignal | undefined, fn: (ep: RepositoryEndpoint) => Promise<T>): Promise<T> {
    let best: unknown;
    for (const ep of eps) {
      try {
        return await fn(ep);
      } catch (err) {
        if (signal?.aborted) throw abortError(signal);
        if (best === undefined || errorRank(err) > errorRank(best)) best = err;
      }
    }
    throw best;
  }

  async resolve(ref: string, options: SignalOption & TransferHooks = {}): Promise<Resolved> {
    const r = parseReference(ref);
    const { signal, onRetry } = options;
    const descriptor = await this.#each(this.#endpoints(r, "resolve"), signal, async (ep) => {
      if (r.digest) return (await this.#getManifest(ep, r.digest, r.digest, signal, onRetry)).descriptor;
      return this.#headTag(ep, r.tag as string, signal, onRetry);
    });
    return { name: r.name, descriptor };
  }

  /** Fetch a manifest by tag or digest, with its raw bytes (verified against a digest ref). */
  async fetchManifest(ref: string, options: SignalOption & TransferHooks = {}): Promise<FetchedManifest> {
    const r = parseReference(ref);
    const got = await this.#each(this.#endpoints(r, "resolve"), options.signal, (ep) =>
      this.#getManifest(ep, (r.digest ?? r.tag) as string, r.digest, options.signal, options.onRetry),
    );
    return { name: r.name, ...got };
  }

  async #headTag(ep: RepositoryEndpoint, tag: string, signal: AbortSignal | undefined, onRetry?: TransferHooks["onRetry"]): Promise<Descriptor> {
    const res = await this.#ctx.http.send({
      method: "HEAD",
      url: ep.url(`manifests/${tag}`),
      headers: { accept: ACCEPT_MANIFESTS },
      scopes: ep.scopes("pull"),
      signal,
      onRetry,
      accept: (s) => (s >= 200 && s < 300) || s === 405,
    });
    const dcd = res.header("docker-content-digest");
    const len = Number(res.header("content-length") ?? Number.NaN);
    const ct = bareType(res.header("content-type"));
    if (res.status === 200 && dcd && isDigest(dcd) && Number.isSafeInteger(len) && len > 0 && ct && isManifestLike(ct)) {
      if (len > this.#ctx.maxManifestBytes) throw this.#tooBig(res.url, len);
      return { mediaType: ct, digest: dcd, size: len };
    }
    // No usable digest/length/type (ECR, static hosts) or HEAD not allowed: GET and hash.
    return (await this.#getManifest(ep, tag, undefined, signal, onRetry)).descriptor;
  }

  #tooBig(url: URL, size: number): FerryError {
    return new InvalidManifestError(`${redactUrl(url)}: manifest is ${size} bytes, over the ${this.#ctx.maxManifestBytes}-byte limit`, {
      details: { size, max: this.#ctx.maxManifestBytes, url: redactUrl(url) },
    });
  }

  async #getManifest(
    ep: RepositoryEndpoint,
    refOrDigest: string,
    expected: Digest | undefined,
    signal: AbortSignal | undefined,
    onRetry?: TransferHooks["onRetry"],
  ): Promise<{ descriptor: Descriptor; data: Uint8Array }> {
    const get = (path: string) =>
      this.#ctx.http.send({
        method: "GET",
        url: ep.url(path),
        headers: { accept: ACCEPT_MANIFESTS },
        scopes: ep.scopes("pull"),
        signal,
        onRetry,
      });
    // The client retries until headers arrive; a body cut short is retried here (small, so from 0).
    for (let attempt = 1; ; attempt++) {
      let res: HttpResponse;
      try {
        res = await get(`manifests/${refOrDigest}`);
      } catch (err) {
        // Only a digest may live under /blobs/, and only a 404 says to look there.
        if (!expected || (err as { code?: string }).code !== "NotFound") throw err;
        res = await get(`blobs/${refOrDigest}`);
      }
      const lenHeader = res.header("content-length");
      const len = lenHeader === undefined ? undefined : Number(lenHeader);
      if (len !== undefined && len > this.#ctx.maxManifestBytes) {
        discard(res);
        throw this.#tooBig(res.url, len);
      }
      let data: Uint8Array;
      try {
        data = await readCapped(res.body, this.#ctx.maxManifestBytes, `manifest ${redactUrl(res.url)}`, len);
      } catch (err) {
        if (signal?.aborted) throw abortError(signal);
        const code = (err as { code?: string }).code;
        const transient = !(err instanceof FerryError) || code === "SizeMismatch";
        if (transient && attempt < 3) continue;
        if (!(err instanceof FerryError)) throw new NetworkError(`GET ${redactUrl(res.url)}: ${(err as Error).message}`, { cause: err });
        throw err;
      }
      return this.#checkManifest(res, data, expected);
    }
  }

  #checkManifest(res: HttpResponse, data: Uint8Array, expected: Digest | undefined): { descriptor: Descriptor; data: Uint8Array } {
    const headerDigest = res.header("docker-content-digest");
    const algorithm = expected ? digestAlgorithm(expected) : headerDigest && isDigest(headerDigest) ? digestAlgorithm(headerDigest) : "sha256";
    const digest = digestOf(data, algorithm);
    if (expected && digest !== expected) {
      throw new DigestMismatchError(`manifest ${redactUrl(res.url)} hashes to ${digest}, expected ${expected}`, {
        details: { expected, actual: digest, url: redactUrl(res.url) },
      });
    }
    if (!expected && headerDigest && isDigest(headerDigest) && headerDigest !== digest) {
      throw new DigestMismatchError(`manifest ${redactUrl(res.url)} hashes to ${digest}, Docker-Content-Digest says ${headerDigest}`, {
        details: { expected: headerDigest, actual: digest, url: redactUrl(res.url) },
      });
    }
    return { descriptor: { mediaType: manifestMediaType(res.header("content-type"), data), digest, size: data.byteLength }, data };
  }

  /** A fetcher for repository `name` (`registry/repository`): mirrors with `pull` first. */
  async fetcher(name: string): Promise<RegistryFetcher> {
    const r = parseReference(name, { defaultTag: false });
    return new RegistryFetcher(this.#ctx, this.#endpoints(r, "pull"));
  }

  /** A pusher for repository `name`: the first mirror with `push`, else the registry. */
  async pusher(name: string): Promise<RegistryPusher> {
    const r = parseReference(name, { defaultTag: false });
    return new RegistryPusher(this.#ctx, this.#endpoints(r, "push")[0] as RepositoryEndpoint);
  }

  /** Tags of repository `name`, following `Link: <…>; rel="next"` pages on the same origin only. */
  async *tags(name: string, options: ListOptions = {}): AsyncIterable<string> {
    const r = parseReference(name, { defaultTag: false });
    const ep = this.#endpoints(r, "resolve").at(-1) as RepositoryEndpoint;
    yield* this.#paged(ep.url("tags/list", { n: options.n, last: options.last }), ep.scopes("pull"), "tags", options);
  }

  /** Repositories of `registry` (`host[:port]`) from `/v2/_catalog`, paginated like {@link tags}. */
  async *catalog(registry: string, options: ListOptions = {}): AsyncIterable<string> {
    const r = parseReference(`${registry}/x`, { defaultTag: false });
    const ep = this.#endpoints(r, "resolve").at(-1) as RepositoryEndpoint;
    const url = new URL("/v2/_catalog", ep.host.base);
    if (options.n !== undefined) url.searchParams.set("n", String(options.n));
    if (options.last !== undefined) url.searchParams.set("last", options.last);
    // The catalog scope (`registry:catalog:*`) is not a repository scope: the challenge names it.
    yield* this.#paged(url, [], "repositories", options);
  }

  async *#paged(first: URL, scopes: AuthScope[], field: "tags" | "repositories", options: ListOptions): AsyncIterable<string> {
    const limit = options.limit ?? DEFAULT_LIST_LIMIT;
    let url: URL | undefined = first;
    let count = 0;
    // A `Link` back to a page already read, or a page with nothing on it that still says "next",
    // would have this loop ask forever.
    const seen = new Set<string>();
    while (url && !seen.has(url.href)) {
      seen.add(url.href);
      const res = await this.#ctx.http.send({ method: "GET", url, scopes, signal: options.signal, headers: { accept: "application/json" } });
      const data = await readCapped(res.body, this.#ctx.maxManifestBytes, `${field} list ${redactUrl(url)}`);
      let list: unknown;
      try {
        list = (JSON.parse(Buffer.from(data).toString("utf8")) as Record<string, unknown>)[field];
      } catch (err) {
        throw new FerryError("Registry", `${redactUrl(url)}: ${field} list is not JSON`, { cause: err });
      }
      const page = Array.isArray(list) ? list : [];
      for (const t of page) {
        // A tag that is not one (`../x/manifests/y`) would address something else once in a URL.
        if (typeof t !== "string" || (field === "tags" && !isValidTag(t))) continue;
        if (count++ >= limit) return;
        yield t;
      }
      const next: URL | undefined = page.length > 0 ? parseNextLink(res.headerAll("link"), url) : undefined;
      // Never follow a listing to another origin: it would receive this repository's credentials' scope.
      url = next && next.origin === first.origin ? next : undefined;
    }
  }

  /**
   * Manifests referring to `digest` in repository `name`: the referrers API, or, when the
   * registry lacks it (404), the `sha256-<hex>` tag-schema index. Capped like manifests.
   */
  async referrers(name: string, digest: Digest | string, options: ReferrersOptions = {}): Promise<Descriptor[]> {
    const d = parseDigest(digest);
    const r = parseReference(name, { defaultTag: false });
    const ep = this.#endpoints(r, "resolve").at(-1) as RepositoryEndpoint;
    const signal = options.signal;
    let manifests: Descriptor[] | undefined;
    let filtered = false;
    const res = await this.#ctx.http.send({
      method: "GET",
      url: ep.url(`referrers/${d}`, { artifactType: options.artifactType }),
      headers: { accept: MediaTypes.OciIndex },
      scopes: ep.scopes("pull"),
      signal,
      accept: (s) => (s >= 200 && s < 300) || s === 404 || s === 405 || s === 400,
    });
    const ct = bareType(res.header("content-type"));
    if (res.status === 200 && (ct === MediaTypes.OciIndex || ct === "application/json")) {
      const data = await readCapped(res.body, this.#ctx.maxManifestBytes, `referrers ${redactUrl(res.url)}`);
      manifests = this.#indexManifests(data, res.url);
      filtered = (res.header("oci-filters-applied") ?? "").split(",").map((s) => s.trim()).includes("artifactType");
    } else {
      discard(res);
      // Fallback: the tag schema, an index tagged `<alg>-<hex>`.
      const tag = d.replace(":", "-");
      try {
        const got = await this.#getManifest(ep, tag, undefined, signal);
        manifests = this.#indexManifests(got.data, ep.url(`manifests/${tag}`));
      } catch (err) {
        if (err instanceof NotFoundError) return [];
        throw err;
      }
    }
    if (options.artifactType && !filtered) manifests = manifests.filter((m) => m.artifactType === options.artifactType);
    return manifests;
  }

  #indexManifests(data: Uint8Array, url: URL): Descriptor[] {
    let doc: { manifests?: unknown };
    try {
      doc = JSON.parse(Buffer.from(data).toString("utf8")) as { manifests?: unknown };
    } catch (err) {
      throw new InvalidManifestError(`${redactUrl(url)}: referrers index is not JSON`, { cause: err });
    }
    if (typeof doc !== "object" || doc === null || Array.isArray(doc)) throw new InvalidManifestError(`${redactUrl(url)}: referrers index is not a JSON object`);
    if (!Array.isArray(doc.manifests)) return [];
    return doc.manifests.filter((m): m is Descriptor => !!m && typeof m === "object" && isDigest((m as Descriptor).digest) && typeof (m as Descriptor).size === "number");
  }

  /**
   * Delete a manifest. A tag reference is resolved first: registries (distribution) delete by
   * digest only, so this removes the manifest every tag of it points at.
   */
  async deleteManifest(ref: string, options: SignalOption = {}): Promise<Digest> {
    const r = parseReference(ref);
    const ep = this.#endpoints(r, "push").at(-1) as RepositoryEndpoint;
    // The tag is looked up where the DELETE goes: a mirror's (stale) answer would name another
    // manifest, and the registry would delete that one.
    const digest = r.digest ?? (await this.#headTag(ep, r.tag as string, options.signal)).digest;
    const res = await this.#ctx.http.send({
      method: "DELETE",
      url: ep.url(`manifests/${digest}`),
      scopes: ep.scopes("delete"),
      signal: options.signal,
    });
    discard(res);
    return digest;
  }
}

/** Create a resolver for OCI distribution registries. */
export function createRegistryResolver(options: RegistryResolverOptions = {}): RegistryResolver {
  return new RegistryResolver(options);
}
