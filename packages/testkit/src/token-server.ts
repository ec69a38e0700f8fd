/**
 * A docker token-auth server (the "realm" of `WWW-Authenticate: Bearer …`) for tests: issues
 * RS256 JWTs that distribution's `auth.token` accepts, counts what it issues, and can hand out
 * short-lived tokens so clients must refresh.
 */
import { createHash, generateKeyPairSync, randomBytes, sign, X509Certificate, type KeyObject } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TokenAuth } from "./docker-registry.ts";
import { runTool } from "./tools.ts";

/** A user of the token server. */
export interface TokenUser {
  password: string;
  /** Actions this user may get on any repository. Default: whatever is asked (`pull`, `push`, `delete`, `*`). */
  actions?: string[];
}

export interface StartTokenServerOptions {
  /** Users by name: a password, or a {@link TokenUser}. */
  users: Record<string, string | TokenUser>;
  /** `iss` claim; the registry's `auth.token.issuer` must match. Default `"ferry-token-issuer"`. */
  issuer?: string;
  /** `aud` claim and expected `service` parameter; the registry's `auth.token.service`. Default `"ferry-registry"`. */
  service?: string;
  /** Token lifetime in seconds (`expires_in`). Default 300. Change later with `setExpiresIn`. */
  expiresIn?: number;
  /**
   * Seconds taken off the `exp` claim (not off `expires_in`). distribution accepts tokens up to
   * 60 s after `exp`; a skew of 60 makes a token really die when `expires_in` says. Default 0.
   */
  expSkew?: number;
  /** Actions granted without credentials (e.g. `["pull"]`). Default: none (anonymous gets an empty `access`). */
  anonymousActions?: string[];
  /**
   * How the JWT header names its key: `"x5c"` (the certificate itself), `"kid"` (libtrust key ID
   * of the certificate's key, looked up in the registry's root bundle), or `"both"`. Default `"x5c"`.
   */
  keyHint?: "x5c" | "kid" | "both";
}

/** One answered token request. */
export interface TokenIssue {
  grant: "basic" | "anonymous" | "password" | "refresh_token";
  account: string;
  /** Scopes as requested (`repository:NAME:ACTIONS`). */
  scopes: string[];
  /** The access granted, as in the JWT `access` claim. */
  access: AccessEntry[];
  refreshToken: boolean;
  at: number;
}

export interface AccessEntry {
  type: string;
  name: string;
  actions: string[];
}

export interface TokenServer {
  /** `http://127.0.0.1:PORT`. */
  url: string;
  /** The token endpoint: `${url}/token` (the registry's `realm`). */
  realm: string;
  issuer: string;
  service: string;
  /** PEM file of the self-signed certificate to give the registry as `rootcertbundle`. */
  certPath: string;
  /** libtrust key ID of the signing key (what a `kid` header carries). */
  keyId: string;
  /** Tokens issued so far (all grants). */
  readonly issued: number;
  /** Every issued token, oldest first. Clear with `log.length = 0`. */
  readonly log: TokenIssue[];
  /** Requests refused (bad credentials, bad grant, wrong service). */
  readonly refused: number;
  /** Options for `startDockerRegistry({ auth })`. */
  registryAuth(): TokenAuth;
  /** Sign a token directly (e.g. to hand a client an already-expired one). */
  mint(account: string, access: AccessEntry[], expiresIn?: number): string;
  setExpiresIn(seconds: number): void;
  stop(): Promise<void>;
}

const ALL_ACTIONS = ["pull", "push", "delete", "*"];

/** Start a token server on a free 127.0.0.1 port. Needs the `openssl` CLI (for the certificate). */
export async function startTokenServer(options: StartTokenServerOptions): Promise<TokenServer> {
  const issuer = options.issuer ?? "ferry-token-issuer";
  const service = options.service ?? "ferry-registry";
  let expiresIn = options.expiresIn ?? 300;
  const expSkew = options.expSkew ?? 0;
  const keyHint = options.keyHint ?? "x5c";
  const users = new Map<string, TokenUser>(
    Object.entries(options.users).map(([name, u]) => [name, typeof u === "string" ? { password: u } : u]),
  );

  const dir = await mkdtemp(join(tmpdir(), "ferry-token-"));
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const keyPath = join(dir, "key.pem");
  const certPath = join(dir, "cert.pem");
  await writeFile(keyPath, privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
  await runTool("openssl", ["req", "-x509", "-new", "-key", keyPath, "-subj", "/CN=ferry test token signer", "-days", "2", "-out", certPath]);
  const cert = new X509Certificate(await readFile(certPath));
  const certDer = cert.raw.toString("base64");
  const keyId = libtrustKeyId(publicKey);

  const header: Record<string, unknown> = { typ: "JWT", alg: "RS256" };
  if (keyHint !== "kid") header.x5c = [certDer];
  if (keyHint !== "x5c") header.kid = keyId;
  const encodedHeader = b64url(JSON.stringify(header));

  const log: TokenIssue[] = [];
  let refused = 0;
  const refreshTokens = new Map<string, string>(); // token -> account

  const mint = (account: string, access: AccessEntry[], lifetime = expiresIn): string => {
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      iss: issuer,
      sub: account,
      aud: service,
      exp: now + lifetime - expSkew,
      nbf: now - 1,
      iat: now,
      jti: randomBytes(12).toString("hex"),
      access,
    };
    const input = `${encodedHeader}.${b64url(JSON.stringify(claims))}`;
    return `${input}.${b64url(sign("sha256", Buffer.from(input), privateKey))}`;
  };

  const grant = (account: string, scopes: string[]): AccessEntry[] => {
    const user = users.get(account);
    const allowed = account === "" ? (options.anonymousActions ?? []) : (user?.actions ?? ALL_ACTIONS);
    const out: AccessEntry[] = [];
    for (const s of scopes) {
      const parsed = parseScope(s);
      if (!parsed) continue;
      const actions = parsed.actions.filter((a) => allowed.includes(a));
      out.push({ type: parsed.type, name: parsed.name, actions });
    }
    return out;
  };

  const issue = (res: ServerResponse, grantType: TokenIssue["grant"], account: string, scopes: string[], offline: boolean, style: "get" | "post"): void => {
    const access = grant(account, scopes);
    const token = mint(account, access);
    const body: Record<string, unknown> = { expires_in: expiresIn, issued_at: new Date().toISOString() };
    if (style === "get") body.token = token;
    body.access_token = token;
    if (style === "post") body.scope = scopes.join(" ");
    if (offline && account !== "") {
      const rt = randomBytes(24).toString("base64url");
      refreshTokens.set(rt, account);
      body.refresh_token = rt;
    }
    log.push({ grant: grantType, account, scopes, access, refreshToken: body.refresh_token !== undefined, at: Date.now() });
    json(res, 200, body);
  };

  const deny = (res: ServerResponse, status: number, message: string, basicChallenge = false): void => {
    refused++;
    const headers: Record<string, string> = {};
    if (basicChallenge) headers["www-authenticate"] = `Basic realm="ferry token server"`;
    json(res, status, { errors: [{ code: status === 401 ? "UNAUTHORIZED" : "INVALID_REQUEST", message }] }, headers);
  };

  const checkUser = (name: string, password: string): boolean => users.get(name)?.password === password;

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) json(res, 500, { errors: [{ code: "INTERNAL", message: "token server failure" }] });
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (url.pathname !== "/token") return json(res, 404, { errors: [{ code: "NOT_FOUND", message: "no such endpoint" }] });
    if (req.method === "GET") {
      const svc = url.searchParams.get("service");
      if (svc !== null && svc !== service) return deny(res, 400, `unknown service ${svc}`);
      const scopes = url.searchParams.getAll("scope").flatMap((s) => s.split(" ")).filter(Boolean);
      const offline = url.searchParams.get("offline_token") === "true";
      const auth = req.headers.authorization;
      if (auth === undefined) return issue(res, "anonymous", "", scopes, false, "get");
      const basic = parseBasic(auth);
      if (!basic || !checkUser(basic.user, basic.password)) return deny(res, 401, "invalid credentials", true);
      return issue(res, "basic", basic.user, scopes, offline, "get");
    }
    if (req.method === "POST") {
      const form = new URLSearchParams(await readBody(req, 64 * 1024));
      const svc = form.get("service");
      if (svc !== null && svc !== service) return deny(res, 400, `unknown service ${svc}`);
      const scopes = form.getAll("scope").flatMap((s) => s.split(" ")).filter(Boolean);
      const offline = form.get("access_type") === "offline";
      switch (form.get("grant_type")) {
        case "password": {
          const user = form.get("username") ?? "";
          if (!checkUser(user, form.get("password") ?? "")) return deny(res, 401, "invalid credentials");
          return issue(res, "password", user, scopes, offline, "post");
        }
        case "refresh_token": {
          const account = refreshTokens.get(form.get("refresh_token") ?? "");
          if (account === undefined || !users.has(account)) return deny(res, 401, "invalid refresh token");
          // The refresh token stays valid (docker's flow reuses it); hand it back.
          const access = grant(account, scopes);
          const token = mint(account, access);
          log.push({ grant: "refresh_token", account, scopes, access, refreshToken: true, at: Date.now() });
          return json(res, 200, {
            access_token: token,
            scope: scopes.join(" "),
            expires_in: expiresIn,
            issued_at: new Date().toISOString(),
            refresh_token: form.get("refresh_token"),
          });
        }
        default:
          return deny(res, 400, `unsupported grant_type ${form.get("grant_type") ?? "(none)"}`);
      }
    }
    res.writeHead(405, { allow: "GET, POST" }).end();
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;
  let stopping: Promise<void> | undefined;
  return {
    url,
    realm: `${url}/token`,
    issuer,
    service,
    certPath,
    keyId,
    get issued() {
      return log.length;
    },
    log,
    get refused() {
      return refused;
    },
    registryAuth: () => ({ token: { realm: `${url}/token`, service, issuer, rootCertBundlePath: certPath } }),
    mint,
    setExpiresIn(seconds: number) {
      expiresIn = seconds;
    },
    stop: () =>
      (stopping ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        await rm(dir, { recursive: true, force: true });
      })()),
  };
}

/** `type:name:actions` where the name may itself hold colons (e.g. a registry host:port). */
export function parseScope(scope: string): AccessEntry | undefined {
  const first = scope.indexOf(":");
  const last = scope.lastIndexOf(":");
  if (first <= 0 || last === first) return undefined;
  return {
    type: scope.slice(0, first),
    name: scope.slice(first + 1, last),
    actions: scope.slice(last + 1).split(",").filter(Boolean),
  };
}

/**
 * The libtrust key ID distribution uses to match a JWT `kid`: sha256 of the DER
 * SubjectPublicKeyInfo, first 240 bits, base32, in twelve colon-separated groups of four.
 */
export function libtrustKeyId(publicKey: KeyObject): string {
  const der = publicKey.export({ type: "spki", format: "der" });
  const b32 = base32(createHash("sha256").update(der).digest().subarray(0, 30));
  return b32.match(/.{4}/g)!.join(":");
}

function base32(bytes: Uint8Array): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0;
  let value = 0;
  let out = "";
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out;
}

const b64url = (s: string | Uint8Array): string => Buffer.from(s).toString("base64url");

function parseBasic(header: string): { user: string; password: string } | undefined {
  const m = /^Basic\s+(\S+)$/i.exec(header);
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, "base64").toString("utf8");
  const i = decoded.indexOf(":");
  if (i < 0) return undefined;
  return { user: decoded.slice(0, i), password: decoded.slice(i + 1) };
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers });
  res.end(text);
}

async function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > limit) break; // a token request form is tiny; ignore the rest
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString("utf8");
}
