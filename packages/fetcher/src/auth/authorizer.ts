/**
 * Registry authorization: Basic and Bearer (the distribution token protocol, GET and OAuth2 POST),
 * with a token cache per host and scope set, one in-flight token fetch per key, and refresh ahead
 * of expiry so a long upload never starts with a dying token.
 *
 * Where credentials may go (the rules this module follows):
 * - Token requests use HTTPS; plain HTTP only when the realm host is loopback or listed in
 *   `insecure`. Anything else fails with `Unauthorized` before a byte is sent.
 * - When the challenge itself arrived over plain HTTP, credentials are sent only to a realm on the
 *   same host name as the registry (any port); a realm elsewhere gets an anonymous token request.
 *   A plain-HTTP challenge can be forged by anyone on the path, and must not be able to point
 *   ferry's credentials at a host of the attacker's choice.
 * - Errors never carry tokens, passwords or `Authorization` values: server text is passed through
 *   {@link redact} and clipped.
 */
import type { Dispatcher } from "undici";
import { request } from "../undici-lite.ts";
import {
  DeniedError,
  FerryError,
  NetworkError,
  TooManyRequestsError,
  UnauthorizedError,
  UnavailableError,
  abortError,
  throwIfAborted,
} from "@ferry/core";
import { defaultScheme } from "../reference.ts";
import { type Challenge, findChallenge, parseChallenges } from "./challenge.ts";
import { type Credential, type CredentialMap, type CredentialStore, createCredentialStore, staticCredentials } from "./credentials.ts";
import { redact } from "./redact.ts";

export interface AuthScope {
  repository: string;
  actions: ("pull" | "push" | "delete" | "*")[];
}

export interface Authorizer {
  /**
   * Authorization header value for a request to `url` needing `scopes`, if any is known (cache,
   * or a token fetched proactively when this host's challenge is already known). Never throws
   * for missing credentials; throws typed errors when a token server fails.
   */
  authorize(url: URL, scopes: AuthScope[], signal?: AbortSignal): Promise<string | undefined>;
  /**
   * Called on a 401: parse the challenge(s), obtain credentials/tokens; returns true when
   * retrying the request with a new `authorize()` value may succeed (false: give up with
   * Unauthorized). `sentAuthorization`, when the caller passes the `Authorization` value the
   * failed request carried, lets the authorizer tell "my current token was rejected" from "that
   * request used an older token"; without it every call is treated as a rejection of the current
   * value, so callers must retry a request at most once (the HttpClient does).
   */
  onUnauthorized(
    url: URL,
    scopes: AuthScope[],
    wwwAuthenticate: string[],
    signal?: AbortSignal,
    sentAuthorization?: string,
  ): Promise<boolean>;
}

export interface AuthorizerOptions {
  /**
   * Where credentials come from: a {@link CredentialStore}, or explicit credentials per registry
   * host. Default: docker's `config.json` and credential helpers (see `dockerConfigCredentials`).
   */
  credentials?: CredentialStore | CredentialMap;
  /** undici dispatcher for token requests. Default: undici's global dispatcher. */
  dispatcher?: Dispatcher;
  /**
   * Exchange a username and password with an OAuth2 `grant_type=password` POST instead of a GET
   * with Basic auth. Falls back to the GET when the token server answers 404 or 405. Default `false`.
   */
  passwordGrant?: boolean;
  /** `client_id` sent with OAuth2 POSTs. Default `"ferry"`. */
  clientId?: string;
  /**
   * Fetch a new token this long before the cached one expires, in ms. Default: 30 s or 10 % of
   * the token's lifetime, whichever is smaller (so a 60 s token is used for 54 s).
   */
  refreshMarginMs?: number;
  /** Token realms (`host[:port]`) that may be reached over plain HTTP besides loopback. Default `[]`. */
  insecure?: string[];
  /** Time limit of one token request, in ms. Default 30 000. */
  timeoutMs?: number;
  /** Largest token response accepted, in bytes. Default 1 MiB. */
  maxResponseBytes?: number;
  /** `User-Agent` of token requests. Default `ferry/0.1`. */
  userAgent?: string;
  /** Clock, in ms since the epoch (tests). Default `Date.now`. */
  now?: () => number;
}

/** Tokens kept in one authorizer's cache before expired and oldest entries are dropped. */
const MAX_CACHED_TOKENS = 512;

/** Lifetime assumed when a token response has no `expires_in` (the distribution spec's default). */
export const DEFAULT_TOKEN_LIFETIME_S = 60;

interface TokenEntry {
  header: string;
  expiresAt: number;
  refreshAt: number;
  /** Fetched to replace a token the registry rejected. */
  afterReject: boolean;
}

interface HostState {
  scheme: "basic" | "bearer";
  realm?: string;
  service?: string;
  /** Registry URL protocol the challenge came over. */
  protocol: string;
  /** Requested scope key → scopes merged with the challenge's own scope. */
  aliases: Map<string, string[]>;
}

/** Create the default {@link Authorizer}. */
export function createAuthorizer(options: AuthorizerOptions = {}): Authorizer {
  return new TokenAuthorizer(options);
}

class TokenAuthorizer implements Authorizer {
  readonly #store: CredentialStore;
  readonly #opts: AuthorizerOptions;
  readonly #now: () => number;
  readonly #hosts = new Map<string, HostState>();
  readonly #tokens = new Map<string, TokenEntry>();
  readonly #inflight = new Map<string, Promise<TokenEntry>>();
  readonly #creds = new Map<string, Promise<Credential | undefined>>();
  /** Refresh tokens handed back by OAuth2 POSTs, by registry host; they replace the configured one. */
  readonly #refreshTokens = new Map<string, string>();

  constructor(options: AuthorizerOptions) {
    this.#opts = options;
    this.#now = options.now ?? Date.now;
    const c = options.credentials;
    this.#store = c === undefined ? createCredentialStore() : isStore(c) ? c : staticCredentials(c);
  }

  async authorize(url: URL, scopes: AuthScope[], signal?: AbortSignal): Promise<string | undefined> {
    throwIfAborted(signal);
    const st = this.#hosts.get(url.host);
    if (!st) return undefined;
    const cred = await this.#credential(url.host, signal);
    if (st.scheme === "basic") return basicHeader(cred);
    if (cred && "registryToken" in cred) return `Bearer ${cred.registryToken}`;
    const requested = scopeStrings(scopes);
    const list = st.aliases.get(requested.join(" ")) ?? requested;
    const entry = await this.#token(url, st, list, false, signal);
    return entry.header;
  }

  async onUnauthorized(
    url: URL,
    scopes: AuthScope[],
    wwwAuthenticate: string[],
    signal?: AbortSignal,
    sent?: string,
  ): Promise<boolean> {
    throwIfAborted(signal);
    const challenges = parseChallenges(wwwAuthenticate);
    const bearer = findChallenge(challenges, "bearer");
    const basic = findChallenge(challenges, "basic");
    const prev = this.#hosts.get(url.host);

    if (bearer) return this.#onBearer(url, scopes, bearer, prev, signal, sent);
    if (basic) {
      const header = basicHeader(await this.#credential(url.host, signal));
      if (header === undefined) return false;
      this.#hosts.set(url.host, { scheme: "basic", protocol: url.protocol, aliases: new Map() });
      // Our own credentials were just refused: retrying with them again cannot help.
      return sent === undefined ? true : sent !== header;
    }
    return false;
  }

  async #onBearer(url: URL, scopes: AuthScope[], ch: Challenge, prev: HostState | undefined, signal: AbortSignal | undefined, sent: string | undefined): Promise<boolean> {
    const realm = ch.params["realm"];
    if (!realm) return false;
    this.#checkRealm(url, realm);
    const service = ch.params["service"];
    const st: HostState =
      prev && prev.scheme === "bearer" && prev.realm === realm && prev.service === service
        ? prev
        : { scheme: "bearer", realm, protocol: url.protocol, aliases: new Map(), ...(service === undefined ? {} : { service }) };
    st.protocol = url.protocol;
    this.#hosts.set(url.host, st);

    const requested = scopeStrings(scopes);
    const merged = mergeScopes(requested, (ch.params["scope"] ?? "").split(" "));
    if (merged.join(" ") !== requested.join(" ")) st.aliases.set(requested.join(" "), merged);

    const cred = await this.#credential(url.host, signal);
    if (cred && "registryToken" in cred) {
      const header = `Bearer ${cred.registryToken}`;
      return sent === undefined ? prev?.scheme !== "bearer" : sent !== header;
    }

    const key = tokenKey(url, st, merged);
    const pending = this.#inflight.get(key);
    if (pending) {
      // Someone is already fetching a fresh token for this key: the retry will use it.
      await raceAbort(pending, signal);
      return true;
    }
    const entry = this.#tokens.get(key);
    if (entry && sent !== undefined && sent !== entry.header && this.#now() < entry.refreshAt) {
      return true; // that request carried an older token; the current one is still good
    }
    if (entry) {
      this.#tokens.delete(key);
      // A replacement token rejected as well: the registry will not take our tokens.
      if (entry.afterReject && sent === entry.header) return false;
    }
    const fresh = await this.#token(url, st, merged, entry !== undefined, signal);
    return entry === undefined || fresh.header !== entry.header;
  }

  /** Refuse realms that would leak credentials or tokens over plain HTTP. */
  #checkRealm(url: URL, realm: string): URL {
    let r: URL;
    try {
      r = new URL(realm);
    } catch {
      throw new UnauthorizedError(`${url.host}: the token realm in the challenge is not a URL`, { details: { host: url.host } });
    }
    if (r.protocol !== "https:" && r.protocol !== "http:") {
      throw new UnauthorizedError(`${url.host}: unsupported token realm scheme ${r.protocol}`, { details: { host: url.host } });
    }
    if (r.protocol === "http:" && defaultScheme(r.host, { insecure: this.#opts.insecure ?? [] }) !== "http") {
      throw new UnauthorizedError(
        `${url.host}: refusing to request a token over plain HTTP from ${r.host} (not loopback; list it in "insecure" to allow)`,
        { details: { host: url.host, realmHost: r.host } },
      );
    }
    return r;
  }

  #credential(host: string, signal?: AbortSignal): Promise<Credential | undefined> {
    let p = this.#creds.get(host);
    if (!p) {
      // Shared by every caller, so not tied to this caller's signal (helpers have their own timeout).
      p = this.#store.get(host);
      this.#creds.set(host, p);
      p.catch(() => this.#creds.delete(host));
    }
    return raceAbort(p, signal);
  }

  /** A cached token for `scopes`, or one fetched now (shared by concurrent callers). */
  async #token(url: URL, st: HostState, scopes: string[], afterReject: boolean, signal?: AbortSignal): Promise<TokenEntry> {
    const key = tokenKey(url, st, scopes);
    const cached = this.#tokens.get(key);
    if (cached && this.#now() < cached.refreshAt) return cached;
    let p = this.#inflight.get(key);
    if (!p) {
      // The fetch is shared, so it does not follow any one caller's signal; it has its own timeout.
      p = this.#fetchToken(url, st, scopes, afterReject).then(
        (entry) => {
          this.#tokens.set(key, entry);
          if (this.#tokens.size > MAX_CACHED_TOKENS) this.#prune();
          return entry;
        },
        (err: unknown) => {
          // An early refresh that failed: the old token still has some life in it.
          if (cached && this.#now() < cached.expiresAt) return cached;
          throw err;
        },
      );
      const mine = p;
      this.#inflight.set(key, mine);
      const clear = () => {
        if (this.#inflight.get(key) === mine) this.#inflight.delete(key);
      };
      mine.then(clear, clear);
    }
    return raceAbort(p, signal);
  }

  /** Drop expired tokens, then the oldest ones, so a long-lived process touching many repositories stays bounded. */
  #prune(): void {
    const now = this.#now();
    for (const [k, e] of this.#tokens) if (e.expiresAt <= now) this.#tokens.delete(k);
    for (const k of this.#tokens.keys()) {
      if (this.#tokens.size <= MAX_CACHED_TOKENS) break;
      this.#tokens.delete(k);
    }
  }

  async #fetchToken(url: URL, st: HostState, scopes: string[], afterReject: boolean): Promise<TokenEntry> {
    const realm = this.#checkRealm(url, st.realm as string);
    // Over plain HTTP, only a realm on the registry's own host name may see credentials.
    const mayUseCreds = st.protocol === "https:" || realm.hostname === url.hostname;
    const cred = mayUseCreds ? await this.#credential(url.host) : undefined;
    const refresh = this.#refreshTokens.get(url.host) ?? (cred && "identityToken" in cred ? cred.identityToken : undefined);

    let res: TokenResponse;
    if (refresh !== undefined) {
      res = await this.#post(url, realm, st, scopes, { grant_type: "refresh_token", refresh_token: refresh });
    } else if (cred && "password" in cred && this.#opts.passwordGrant) {
      try {
        res = await this.#post(url, realm, st, scopes, { grant_type: "password", username: cred.username, password: cred.password });
      } catch (err) {
        const status = err instanceof FerryError ? err.details["status"] : undefined;
        if (status !== 404 && status !== 405) throw err;
        res = await this.#get(url, realm, st, scopes, cred);
      }
    } else {
      res = await this.#get(url, realm, st, scopes, cred && "password" in cred ? cred : undefined);
    }
    if (res.refreshToken && refresh !== undefined) this.#refreshTokens.set(url.host, res.refreshToken);

    const now = this.#now();
    const lifetimeMs = res.expiresIn * 1000;
    // Count from issued_at when it is plausible (in the past, less than half a lifetime ago); a
    // server clock ahead of ours, or one far behind, falls back to our receive time. With the
    // margin capped at a quarter lifetime, a new token is used for at least a quarter of its
    // lifetime: a stamp 55 s old on a 60 s token had every request fetch a new one.
    let start = now;
    if (res.issuedAt !== undefined && res.issuedAt <= now && now - res.issuedAt < lifetimeMs / 2) start = res.issuedAt;
    const expiresAt = start + lifetimeMs;
    const margin = Math.min(this.#opts.refreshMarginMs ?? Math.min(30_000, lifetimeMs / 10), lifetimeMs / 4);
    return { header: `Bearer ${res.token}`, expiresAt, refreshAt: expiresAt - margin, afterReject };
  }

  async #get(url: URL, realm: URL, st: HostState, scopes: string[], cred: { username: string; password: string } | undefined): Promise<TokenResponse> {
    const u = new URL(realm);
    if (st.service !== undefined) u.searchParams.append("service", st.service);
    for (const s of scopes) u.searchParams.append("scope", s);
    if (cred?.username) u.searchParams.append("account", cred.username);
    const headers: Record<string, string> = { "user-agent": this.#opts.userAgent ?? "ferry/0.1", accept: "application/json" };
    const auth = basicHeader(cred);
    if (auth) headers["authorization"] = auth;
    return this.#send(url, u, { method: "GET", headers }, scopes);
  }

  async #post(url: URL, realm: URL, st: HostState, scopes: string[], grant: Record<string, string>): Promise<TokenResponse> {
    const form = new URLSearchParams(grant);
    if (st.service !== undefined) form.set("service", st.service);
    if (scopes.length > 0) form.set("scope", scopes.join(" "));
    form.set("client_id", this.#opts.clientId ?? "ferry");
    form.set("access_type", "offline");
    const headers = {
      "user-agent": this.#opts.userAgent ?? "ferry/0.1",
      accept: "application/json",
      "content-type": "application/x-www-form-urlencoded",
    };
    return this.#send(url, realm, { method: "POST", headers, body: form.toString() }, scopes);
  }

  async #send(
    registry: URL,
    target: URL,
    init: { method: "GET" | "POST"; headers: Record<string, string>; body?: string },
    scopes: string[],
  ): Promise<TokenResponse> {
    const where = `${target.origin}${target.pathname}`;
    const details = { host: registry.host, realm: where, scopes, method: init.method };
    const cap = this.#opts.maxResponseBytes ?? 1024 * 1024;
    let status: number;
    let text: string;
    try {
      const res = await request(target, {
        method: init.method,
        headers: init.headers,
        ...(init.body === undefined ? {} : { body: init.body }),
        ...(this.#opts.dispatcher ? { dispatcher: this.#opts.dispatcher } : {}),
        signal: AbortSignal.timeout(this.#opts.timeoutMs ?? 30_000),
      });
      status = res.statusCode;
      text = await readCapped(res.body, cap);
    } catch (err) {
      if (err instanceof FerryError) throw err;
      const name = (err as Error)?.name;
      const msg = name === "TimeoutError" ? "timed out" : redact(String((err as Error)?.message ?? err));
      throw new NetworkError(`token request to ${where} for ${registry.host} failed: ${msg}`, { details });
    }
    if (status >= 200 && status < 300) return parseTokenResponse(text, where, details);
    const snippet = redact(text.trim()).slice(0, 200);
    const msg = `token server ${where} answered HTTP ${status} for ${registry.host} (scopes ${scopes.join(" ") || "none"})${snippet ? `: ${snippet}` : ""}`;
    const opts = { details: { ...details, status } };
    if (status === 401) throw new UnauthorizedError(msg, opts);
    if (status === 403) throw new DeniedError(msg, opts);
    if (status === 429) throw new TooManyRequestsError(msg, opts);
    if (status >= 500) throw new UnavailableError(msg, opts);
    throw new FerryError("Registry", msg, opts);
  }
}

interface TokenResponse {
  token: string;
  expiresIn: number;
  issuedAt?: number;
  refreshToken?: string;
}

function parseTokenResponse(text: string, where: string, details: Record<string, unknown>): TokenResponse {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new UnauthorizedError(`token server ${where} answered with something that is not JSON`, { details });
  }
  const o = (typeof body === "object" && body !== null ? body : {}) as Record<string, unknown>;
  const token = typeof o["access_token"] === "string" && o["access_token"] ? o["access_token"] : o["token"];
  if (typeof token !== "string" || token === "") {
    throw new UnauthorizedError(`token server ${where} answered without a token`, { details });
  }
  if (/[\r\n]/.test(token)) throw new UnauthorizedError(`token server ${where} answered with a malformed token`, { details });
  const e = o["expires_in"];
  const expiresIn = typeof e === "number" && Number.isFinite(e) && e > 0 ? e : DEFAULT_TOKEN_LIFETIME_S;
  const out: TokenResponse = { token, expiresIn };
  if (typeof o["issued_at"] === "string") {
    const t = Date.parse(o["issued_at"]);
    if (Number.isFinite(t)) out.issuedAt = t;
  }
  if (typeof o["refresh_token"] === "string" && o["refresh_token"]) out.refreshToken = o["refresh_token"];
  return out;
}

async function readCapped(body: AsyncIterable<Uint8Array> & { destroy?: (err?: Error) => void }, cap: number): Promise<string> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const c of body) {
    size += c.byteLength;
    if (size > cap) {
      body.destroy?.();
      throw new UnavailableError(`token response larger than ${cap} bytes`);
    }
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function isStore(c: CredentialStore | CredentialMap): c is CredentialStore {
  return typeof (c as CredentialStore).get === "function";
}

function basicHeader(cred: Credential | undefined): string | undefined {
  if (!cred || !("password" in cred)) return undefined;
  return `Basic ${Buffer.from(`${cred.username}:${cred.password}`, "utf8").toString("base64")}`;
}

/** `repository:<name>:<actions>` strings, actions sorted and deduplicated, list sorted. */
export function scopeStrings(scopes: readonly AuthScope[]): string[] {
  return mergeScopes(
    scopes.map((s) => `repository:${s.repository}:${s.actions.join(",")}`),
    [],
  );
}

/**
 * Union of scope strings (`type:name:actions`): one entry per `type:name` with the union of
 * actions, sorted, so equal sets give equal cache keys.
 */
export function mergeScopes(a: readonly string[], b: readonly string[]): string[] {
  const byResource = new Map<string, Set<string>>();
  for (const s of [...a, ...b]) {
    const scope = s.trim();
    if (scope === "") continue;
    const last = scope.lastIndexOf(":");
    if (last <= 0) {
      if (!byResource.has(scope)) byResource.set(scope, new Set());
      continue;
    }
    const resource = scope.slice(0, last);
    const set = byResource.get(resource) ?? new Set<string>();
    for (const action of scope.slice(last + 1).split(",")) if (action) set.add(action);
    byResource.set(resource, set);
  }
  return [...byResource]
    .map(([resource, actions]) => (actions.size ? `${resource}:${[...actions].sort().join(",")}` : resource))
    .sort();
}

function tokenKey(url: URL, st: HostState, scopes: readonly string[]): string {
  return `${url.protocol}//${url.host}\n${st.realm ?? ""}\n${st.service ?? ""}\n${scopes.join(" ")}`;
}

function raceAbort<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(abortError(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal));
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}
