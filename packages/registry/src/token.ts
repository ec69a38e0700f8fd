/** Compact HS256 JSON Web Tokens carrying docker-style `access` claims. */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

export interface Access {
  /** `repository` or `registry` (for `registry:catalog:*`). */
  type: string;
  name: string;
  actions: string[];
}

export interface TokenClaims {
  iss: string;
  sub: string;
  aud: string;
  exp: number;
  nbf: number;
  iat: number;
  jti: string;
  access: Access[];
}

const b64url = (b: Buffer | string): string => Buffer.from(b).toString("base64url");

export function signToken(claims: TokenClaims, secret: Uint8Array): string {
  const head = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const body = b64url(JSON.stringify(claims));
  const sig = createHmac("sha256", secret).update(`${head}.${body}`).digest("base64url");
  return `${head}.${body}.${sig}`;
}

/** The claims of a valid, unexpired token for `audience`, else undefined. */
export function verifyToken(token: string, secret: Uint8Array, audience: string, now = Date.now()): TokenClaims | undefined {
  const parts = token.split(".");
  if (parts.length !== 3) return undefined;
  const [head = "", body = "", sig = ""] = parts;
  const want = createHmac("sha256", secret).update(`${head}.${body}`).digest();
  const got = Buffer.from(sig, "base64url");
  if (got.length !== want.length || !timingSafeEqual(got, want)) return undefined;
  let claims: TokenClaims;
  let header: { alg?: unknown };
  try {
    header = JSON.parse(Buffer.from(head, "base64url").toString("utf8")) as { alg?: unknown };
    claims = JSON.parse(Buffer.from(body, "base64url").toString("utf8")) as TokenClaims;
  } catch {
    return undefined;
  }
  if (header.alg !== "HS256") return undefined;
  const t = Math.floor(now / 1000);
  if (claims.aud !== audience || typeof claims.exp !== "number" || claims.exp <= t) return undefined;
  if (typeof claims.nbf === "number" && claims.nbf > t + 5) return undefined;
  if (!Array.isArray(claims.access)) return undefined;
  return claims;
}

export function newTokenId(): string {
  return randomBytes(12).toString("hex");
}

/** Parse `repository:name:pull,push` (the name may hold colons only in a port, which repos lack). */
export function parseScope(scope: string): Access | undefined {
  const first = scope.indexOf(":");
  const last = scope.lastIndexOf(":");
  if (first <= 0 || last === first) return undefined;
  const actions = scope
    .slice(last + 1)
    .split(",")
    .filter((a) => a !== "");
  return { type: scope.slice(0, first), name: scope.slice(first + 1, last), actions };
}

export function formatScope(a: Access): string {
  return `${a.type}:${a.name}:${a.actions.join(",")}`;
}
