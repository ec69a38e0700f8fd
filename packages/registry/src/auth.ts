/**
 * Optional authentication: HTTP Basic against a users map, or Bearer tokens issued by a small
 * built-in token endpoint (the docker token flow: challenge → GET /token?scope=… → retry).
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { sendJson, type RequestContext } from "./http.ts";
import { OciHttpError } from "./oci-errors.ts";
import { formatScope, newTokenId, parseScope, signToken, verifyToken, type Access } from "./token.ts";

export type { Access } from "./token.ts";

export interface TokenOptions {
  /** Path of the token endpoint on this server. Default `/token`. */
  path?: string;
  /** Realm URL sent in challenges. Default `http://<Host header><path>`. */
  realm?: string;
  /** `service` (token audience). Default `ferry-registry`. */
  service?: string;
  /** Token issuer. Default `ferry`. */
  issuer?: string;
  /** HMAC key. Default: random per registry instance. */
  secret?: Uint8Array;
  /** Token lifetime in seconds. Default 300. */
  expiresInSec?: number;
}

export interface AuthOptions {
  /** Accounts: user name → password. */
  users: Record<string, string>;
  /** `basic` (default) or `bearer` (token flow with the built-in token endpoint). */
  scheme?: "basic" | "bearer";
  /** Basic realm. Default `ferry`. */
  realm?: string;
  /** Let anonymous clients pull (never push). Default false. */
  anonymousPull?: boolean;
  /**
   * The actions `user` may take on a resource (undefined user = anonymous). Default: an
   * authenticated user may do everything; anonymous may pull when `anonymousPull`.
   */
  authorize?(user: string | undefined, access: Access): string[];
  token?: TokenOptions;
}

/** Counters tests use to prove a client's token caching and the scopes it asks for. */
/** The last scopes asked for that {@link AuthStats} keeps, and how much of each. */
const MAX_STAT_SCOPES = 1000;
const MAX_STAT_SCOPE_CHARS = 256;

export interface AuthStats {
  tokensIssued: number;
  /** The last 1000 `scope`s asked of the token endpoint (each cut at 256 characters), in order (clear with `scopes.length = 0`). */
  scopes: string[];
}

export class Authenticator {
  readonly #o: AuthOptions;
  readonly #secret: Uint8Array;
  readonly stats: AuthStats = { tokensIssued: 0, scopes: [] };

  constructor(options: AuthOptions) {
    this.#o = options;
    this.#secret = options.token?.secret ?? randomBytes(32);
  }

  get tokenPath(): string {
    return this.#o.token?.path ?? "/token";
  }

  get #service(): string {
    return this.#o.token?.service ?? "ferry-registry";
  }

  get #refreshAudience(): string {
    return `${this.#service}#refresh`;
  }

  #granted(user: string | undefined, access: Access): string[] {
    if (this.#o.authorize !== undefined) return this.#o.authorize(user, access);
    if (user !== undefined) return access.actions;
    return this.#o.anonymousPull === true ? access.actions.filter((a) => a === "pull") : [];
  }

  #checkBasic(ctx: RequestContext): { user: string | undefined; bad: boolean } {
    const h = ctx.req.headers.authorization;
    if (h === undefined || !/^basic /i.test(h)) return { user: undefined, bad: false };
    const decoded = Buffer.from(h.slice(6).trim(), "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon < 0) return { user: undefined, bad: true };
    const user = decoded.slice(0, colon);
    const pass = decoded.slice(colon + 1);
    const want = Object.hasOwn(this.#o.users, user) ? this.#o.users[user] : undefined;
    if (want === undefined || !sameSecret(pass, want)) return { user: undefined, bad: true };
    return { user, bad: false };
  }

  /** Throws UNAUTHORIZED/DENIED unless the request may perform `needed` (empty: just signed in). */
  check(ctx: RequestContext, needed: Access[]): void {
    if (this.#o.scheme === "bearer") return this.#checkBearer(ctx, needed);
    const { user, bad } = this.#checkBasic(ctx);
    const challenge = { "WWW-Authenticate": `Basic realm="${this.#o.realm ?? "ferry"}"` };
    if (bad) throw new OciHttpError("UNAUTHORIZED", "invalid credentials", { headers: challenge });
    if (user === undefined) {
      const anonymousOk = needed.length > 0 ? needed.every((a) => covers(this.#granted(undefined, a), a.actions)) : this.#o.anonymousPull === true;
      if (!anonymousOk) throw new OciHttpError("UNAUTHORIZED", "authentication required", { headers: challenge });
      return;
    }
    for (const a of needed) {
      if (!covers(this.#granted(user, a), a.actions)) {
        throw new OciHttpError("DENIED", "requested access to the resource is denied", { detail: { scope: formatScope(a) } });
      }
    }
  }

  #challenge(ctx: RequestContext, needed: Access[], error?: string): Record<string, string> {
    const realm = this.#o.token?.realm ?? `${ctx.base}${this.tokenPath}`;
    let v = `Bearer realm="${realm}",service="${this.#service}"`;
    if (needed.length > 0) v += `,scope="${needed.map(formatScope).join(" ")}"`;
    if (error !== undefined) v += `,error="${error}"`;
    return { "WWW-Authenticate": v };
  }

  #checkBearer(ctx: RequestContext, needed: Access[]): void {
    const h = ctx.req.headers.authorization;
    if (h === undefined || !/^bearer /i.test(h)) {
      throw new OciHttpError("UNAUTHORIZED", "authentication required", { headers: this.#challenge(ctx, needed) });
    }
    const claims = verifyToken(h.slice(7).trim(), this.#secret, this.#service);
    if (claims === undefined) {
      throw new OciHttpError("UNAUTHORIZED", "invalid or expired token", {
        headers: this.#challenge(ctx, needed, "invalid_token"),
      });
    }
    for (const a of needed) {
      const have = claims.access.filter((g) => g.type === a.type && g.name === a.name).flatMap((g) => g.actions);
      if (!covers(have, a.actions)) {
        throw new OciHttpError("UNAUTHORIZED", "insufficient scope", {
          headers: this.#challenge(ctx, needed, "insufficient_scope"),
          detail: { scope: formatScope(a) },
        });
      }
    }
  }

  /**
   * The token endpoint: `GET ?service=&scope=…` (Basic optional; `offline_token=true` adds a
   * refresh token) or an OAuth2 `POST` form with `grant_type=password` or `refresh_token`
   * (`access_type=offline` adds a refresh token).
   */
  async issue(ctx: RequestContext): Promise<void> {
    let params = ctx.url.searchParams;
    let user: string | undefined;
    let offline: string | undefined;
    if (ctx.method === "POST") {
      const chunks: Buffer[] = [];
      let n = 0;
      for await (const c of ctx.req as AsyncIterable<Buffer>) {
        n += c.length;
        if (n > 64 * 1024) throw new OciHttpError("UNSUPPORTED", "token request too large", { status: 413 });
        chunks.push(c);
      }
      params = new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
      const grant = params.get("grant_type");
      if (grant === "password") {
        const name = params.get("username") ?? "";
        const want = Object.hasOwn(this.#o.users, name) ? this.#o.users[name] : undefined;
        if (want === undefined || !sameSecret(params.get("password") ?? "", want)) {
          throw new OciHttpError("UNAUTHORIZED", "invalid credentials");
        }
        user = name;
      } else if (grant === "refresh_token") {
        // Refresh tokens are signed like access tokens but for another audience, so neither can
        // stand in for the other.
        const claims = verifyToken(params.get("refresh_token") ?? "", this.#secret, this.#refreshAudience);
        if (claims === undefined || !Object.hasOwn(this.#o.users, claims.sub)) {
          throw new OciHttpError("UNAUTHORIZED", "invalid refresh token");
        }
        user = claims.sub;
      } else {
        throw new OciHttpError("UNSUPPORTED", "grant_type must be password or refresh_token", { status: 400 });
      }
      // OAuth2 clients ask for a refresh token with access_type=offline.
      if (params.get("access_type") === "offline" && user !== undefined) offline = user;
    } else {
      const basic = this.#checkBasic(ctx);
      if (basic.bad) {
        throw new OciHttpError("UNAUTHORIZED", "invalid credentials", {
          headers: { "WWW-Authenticate": `Basic realm="${this.#o.realm ?? "ferry"}"` },
        });
      }
      user = basic.user;
      if ((params.get("offline_token") === "true" || params.get("access_type") === "offline") && user !== undefined) offline = user;
    }
    const access: Access[] = [];
    for (const raw of params.getAll("scope").flatMap((s) => s.split(" "))) {
      if (raw !== "") {
        // Kept for tests and diagnostics, bounded: anyone may ask for tokens.
        this.stats.scopes.push(raw.length > MAX_STAT_SCOPE_CHARS ? raw.slice(0, MAX_STAT_SCOPE_CHARS) : raw);
        if (this.stats.scopes.length > MAX_STAT_SCOPES) this.stats.scopes.splice(0, this.stats.scopes.length - MAX_STAT_SCOPES);
      }
      const a = parseScope(raw);
      if (a === undefined) continue;
      const actions = this.#granted(user, a).filter((x) => a.actions.includes(x));
      if (actions.length > 0) access.push({ ...a, actions });
    }
    const now = Math.floor(Date.now() / 1000);
    const expiresIn = this.#o.token?.expiresInSec ?? 300;
    // Round the expiry up to the next whole second: a token must live at least `expiresIn`.
    const exp = Math.ceil(Date.now() / 1000) + expiresIn;
    const token = signToken(
      {
        iss: this.#o.token?.issuer ?? "ferry",
        sub: user ?? "",
        aud: this.#service,
        iat: now,
        nbf: now,
        exp,
        jti: newTokenId(),
        access,
      },
      this.#secret,
    );
    this.stats.tokensIssued++;
    const body: Record<string, unknown> = {
      token,
      access_token: token,
      expires_in: expiresIn,
      issued_at: new Date(now * 1000).toISOString(),
    };
    if (offline !== undefined) {
      body.refresh_token = signToken(
        { iss: this.#o.token?.issuer ?? "ferry", sub: offline, aud: this.#refreshAudience, iat: now, nbf: now, exp: now + 30 * 86400, jti: newTokenId(), access: [] },
        this.#secret,
      );
    }
    await sendJson(ctx, 200, body);
  }
}

function covers(granted: string[], wanted: string[]): boolean {
  return granted.includes("*") || wanted.every((w) => granted.includes(w));
}

function sameSecret(a: string, b: string): boolean {
  // Hash first so the comparison is constant-time whatever the lengths.
  const ha = createHash("sha256").update(a).digest();
  const hb = createHash("sha256").update(b).digest();
  return timingSafeEqual(ha, hb);
}
