/**
 * Options of {@link createRegistryResolver}. Every field is optional; defaults are stated on each.
 */
import type { Dispatcher } from "undici";
import type { CredentialMap, CredentialStore } from "./auth/credentials.ts";

/** The part of an authorizer the transport calls (see `./auth`). */
export interface AuthScope {
  repository: string;
  actions: Array<"pull" | "push" | "delete" | "*">;
}

/** Supplies `Authorization` header values and reacts to 401 challenges. */
export interface RequestAuthorizer {
  /** The `Authorization` value for `url`, or undefined to send none. */
  authorize(url: URL, scopes: AuthScope[], signal?: AbortSignal): Promise<string | undefined>;
  /**
   * Handle a 401; resolve true when a retry may now succeed (e.g. a new token was fetched).
   * `sentAuthorization` is the value the failed request carried (tells a stale token from a rejected one).
   */
  onUnauthorized(url: URL, scopes: AuthScope[], wwwAuthenticate: string[], signal?: AbortSignal, sentAuthorization?: string): Promise<boolean>;
}

export type HostCapability = "pull" | "resolve" | "push";

export interface MirrorHost {
  /** `host[:port]`, optionally with a scheme (`https://mirror.example`). */
  host: string;
  /** What this mirror may be used for. */
  capabilities: HostCapability[];
}

export interface RetryOptions {
  /** Attempts per request, the first included. Default 5. */
  maxAttempts?: number;
  /** Base of the exponential backoff, in ms. Default 200. */
  minDelayMs?: number;
  /** Ceiling of one backoff wait, in ms. Default 10 000. */
  maxDelayMs?: number;
  /**
   * Longest `Retry-After` the client is willing to wait, in ms. A longer one fails the request
   * with `TooManyRequests` carrying `details.retryAfterMs` instead of silently clamping.
   * Default 60 000.
   */
  maxRetryAfterMs?: number;
}

export interface RegistryResolverOptions {
  /** Registries (`host[:port]`) spoken to over plain HTTP. Default: none (loopback hosts are still plain HTTP by the reference rules). */
  insecure?: string[];
  /** Mirrors per registry, tried in order before the registry itself. Default: none. */
  mirrors?: Record<string, MirrorHost[]>;
  /**
   * Authorizer for every request. Default: `createAuthorizer({ credentials, dispatcher, insecure, userAgent })`
   * (Basic and Bearer token auth, see `./auth`).
   */
  authorizer?: RequestAuthorizer;
  /**
   * Credentials for the default authorizer: a store, or explicit credentials per registry host.
   * Default: docker's `config.json` and credential helpers.
   */
  credentials?: CredentialStore | CredentialMap;
  /** undici dispatcher for every request. Default: an `Agent` (a connection pool per origin) owned by the resolver. */
  dispatcher?: Dispatcher;
  /** Requests in flight per host, counted until the response body is consumed. Default 8. */
  concurrencyPerHost?: number;
  /** Retry policy for network errors, 408, 429 and 5xx. */
  retry?: RetryOptions;
  /** A response body silent for this long is dropped and reopened at the offset reached, in ms. Default 30 000. */
  stallTimeoutMs?: number;
  /** `User-Agent` header. Default `ferry/0.1`. */
  userAgent?: string;
  /**
   * Blobs at least this large are fetched with several ranged GETs in flight, by `fetchToStore`
   * and by `RegistryFetcher.fetch` (which `pull` and `copy` use), handed on in order.
   * Default: `Infinity` (off): on loopback one connection already outruns hashing and writing
   * (0.84–1.07× serial), while with each connection capped at 100 MB/s four ranges gave 3×
   * (see README). Set it (e.g. 64 MiB) for registries behind per-connection shaping.
   */
  parallelRangeThreshold?: number;
  /** Size of one range of a parallel fetch, in bytes. Default 16 MiB. */
  rangeChunkSize?: number;
  /** Ranges in flight in a parallel fetch. Default 4. */
  parallelRanges?: number;
  /**
   * Blob GETs of at least this many bytes to a plain-HTTP registry go on a connection of their
   * own whose body the kernel reads straight into the destination's write batch (no parser or
   * staging copy: a 1 GiB blob into store-fs costs 1.45–1.5 CPU s instead of 2.5–2.9, issue 6); a chunked answer is
   * asked again through undici. HTTPS, and a caller's `dispatcher`, always use undici.
   * Default 8 MiB; `Infinity` turns it off.
   */
  socketReadMinBytes?: number;
  /**
   * Smaller blob GETs to a plain-HTTP registry go over ferry's own keep-alive connections: the
   * answer's head is parsed by ferry and its body streamed as the socket delivers it, without
   * undici's parser and request machinery (1000 GETs of 4–64 KiB: 0.17–0.21 CPU s for a bare
   * keep-alive client against 0.61–0.64 for undici, issue 6). Answers that are not plain bytes
   * are asked again through undici. HTTPS, and a caller's `dispatcher`, always use undici.
   * Default true.
   */
  keepAliveReads?: boolean;
  /** Largest manifest (and tag-list / referrers page) accepted, in bytes. Default 4 MiB. */
  maxManifestBytes?: number;
  /**
   * Upload blobs in PATCH chunks of this many bytes (raised to the registry's
   * `OCI-Chunk-Min-Length`). Default: undefined — one streaming monolithic PUT.
   */
  uploadChunkSize?: number;
  /** Smallest chunk ever sent in a chunked upload, in bytes. Default 5 MiB (ECR's part minimum). */
  minUploadChunkSize?: number;
}

export const DEFAULT_MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
export const DEFAULT_SOCKET_READ_MIN_BYTES = 8 * 1024 * 1024;
