import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { FerryError } from "@ferry/core";
import { type AuthScope, createAuthorizer, mergeScopes, scopeStrings } from "./authorizer.ts";

interface Seen {
  method: string;
  path: string;
  query: URLSearchParams;
  form?: URLSearchParams;
  authorization?: string;
}

/** A token server whose answers each test scripts; it records every request. */
let server: Server;
let port: number;
let seen: Seen[] = [];
let counter = 0;
let handler: (req: Seen, res: ServerResponse) => void;
let delayMs = 0;

function okToken(res: ServerResponse, extra: Record<string, unknown> = {}) {
  counter++;
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify({ token: `tok-${counter}`, expires_in: 300, ...extra }));
}

beforeAll(async () => {
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const u = new URL(req.url ?? "/", "http://x");
      const s: Seen = { method: req.method ?? "", path: u.pathname, query: u.searchParams };
      if (req.headers.authorization) s.authorization = req.headers.authorization;
      if (req.method === "POST") s.form = new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
      seen.push(s);
      setTimeout(() => handler(s, res), delayMs);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
});

beforeEach(() => {
  seen = [];
  counter = 0;
  delayMs = 0;
  handler = (_s, res) => okToken(res);
});

const pull = (repository: string): AuthScope[] => [{ repository, actions: ["pull"] }];
const reg = () => new URL(`http://127.0.0.1:${port + 1}/v2/demo/manifests/latest`);
const regHost = () => `127.0.0.1:${port + 1}`;
const realm = () => `http://127.0.0.1:${port}/token`;
const bearer = (extra = "") => [`Bearer realm="${realm()}",service="test-registry"${extra}`];
const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString("base64")}`;

async function caught(p: Promise<unknown>): Promise<FerryError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(FerryError);
    return err as FerryError;
  }
  throw new Error("expected a rejection");
}

describe("authorizer: bearer", () => {
  it("knows nothing before a challenge, then fetches an anonymous token and caches it", async () => {
    const a = createAuthorizer({ credentials: {} });
    expect(await a.authorize(reg(), pull("demo"))).toBeUndefined();
    expect(seen).toHaveLength(0);
    expect(await a.onUnauthorized(reg(), pull("demo"), bearer(',scope="repository:demo:pull"'))).toBe(true);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.method).toBe("GET");
    expect(seen[0]!.authorization).toBeUndefined();
    expect(seen[0]!.query.get("service")).toBe("test-registry");
    expect(seen[0]!.query.getAll("scope")).toEqual(["repository:demo:pull"]);
    expect(await a.authorize(reg(), pull("demo"))).toBe("Bearer tok-1");
    expect(await a.authorize(reg(), pull("demo"))).toBe("Bearer tok-1");
    expect(seen).toHaveLength(1);
    // Another repository on a known host: a token is fetched proactively, no 401 round trip.
    expect(await a.authorize(reg(), pull("other"))).toBe("Bearer tok-2");
    expect(seen[1]!.query.getAll("scope")).toEqual(["repository:other:pull"]);
  });

  it("sends Basic credentials to the token GET, with account and repeated scope params", async () => {
    const a = createAuthorizer({ credentials: { [regHost()]: { username: "alice", password: "s3:cret" } } });
    const scopes: AuthScope[] = [
      { repository: "b/app", actions: ["push", "pull"] },
      { repository: "a/base", actions: ["pull"] },
    ];
    expect(await a.onUnauthorized(reg(), scopes, bearer())).toBe(true);
    expect(seen[0]!.authorization).toBe(basic("alice", "s3:cret"));
    expect(seen[0]!.query.get("account")).toBe("alice");
    expect(seen[0]!.query.getAll("scope")).toEqual(["repository:a/base:pull", "repository:b/app:pull,push"]);
    expect(await a.authorize(reg(), scopes)).toBe("Bearer tok-1");
  });

  it("exchanges an identity token with an OAuth2 refresh_token POST (space-separated scopes, client_id)", async () => {
    handler = (_s, res) => okToken(res, { access_token: "acc-1", token: "ignored", refresh_token: "rt-2" });
    const a = createAuthorizer({ credentials: { [regHost()]: { identityToken: "rt-1" } } });
    const scopes: AuthScope[] = [
      { repository: "x", actions: ["pull"] },
      { repository: "y", actions: ["pull", "push"] },
    ];
    expect(await a.onUnauthorized(reg(), scopes, bearer())).toBe(true);
    const s = seen[0]!;
    expect(s.method).toBe("POST");
    expect(s.authorization).toBeUndefined();
    expect(s.form?.get("grant_type")).toBe("refresh_token");
    expect(s.form?.get("refresh_token")).toBe("rt-1");
    expect(s.form?.get("client_id")).toBe("ferry");
    expect(s.form?.get("service")).toBe("test-registry");
    expect(s.form?.get("scope")).toBe("repository:x:pull repository:y:pull,push");
    expect(await a.authorize(reg(), scopes)).toBe("Bearer acc-1");
    // The refresh token handed back replaces the configured one.
    await a.authorize(reg(), pull("z"));
    expect(seen[1]!.form?.get("refresh_token")).toBe("rt-2");
  });

  it("uses grant_type=password when configured, and falls back to GET on 404", async () => {
    const a = createAuthorizer({ credentials: { [regHost()]: { username: "u", password: "p" } }, passwordGrant: true, clientId: "me" });
    expect(await a.onUnauthorized(reg(), pull("demo"), bearer())).toBe(true);
    expect(seen[0]!.form?.get("grant_type")).toBe("password");
    expect(seen[0]!.form?.get("username")).toBe("u");
    expect(seen[0]!.form?.get("password")).toBe("p");
    expect(seen[0]!.form?.get("client_id")).toBe("me");

    seen = [];
    handler = (s, res) => {
      if (s.method === "POST") {
        res.statusCode = 404;
        res.end("not found");
      } else okToken(res);
    };
    const b = createAuthorizer({ credentials: { [regHost()]: { username: "u", password: "p" } }, passwordGrant: true });
    expect(await b.onUnauthorized(reg(), pull("demo"), bearer())).toBe(true);
    expect(seen.map((s) => s.method)).toEqual(["POST", "GET"]);
    expect(seen[1]!.authorization).toBe(basic("u", "p"));
  });

  it("refreshes before expiry (10 % of a short lifetime, 30 s of a long one) and honours issued_at", async () => {
    let now = Date.parse("2026-01-01T00:00:00Z");
    handler = (_s, res) => okToken(res, { expires_in: 100 });
    const a = createAuthorizer({ credentials: {}, now: () => now });
    await a.onUnauthorized(reg(), pull("demo"), bearer());
    expect(await a.authorize(reg(), pull("demo"))).toBe("Bearer tok-1");
    now += 89_000; // 11 s left: still used (margin is 10 s)
    expect(await a.authorize(reg(), pull("demo"))).toBe("Bearer tok-1");
    now += 2_000; // 9 s left: refreshed before it expires
    expect(await a.authorize(reg(), pull("demo"))).toBe("Bearer tok-2");
    expect(seen).toHaveLength(2);

    // Long lifetime: 30 s margin.
    handler = (_s, res) => okToken(res, { expires_in: 3600 });
    const b = createAuthorizer({ credentials: {}, now: () => now });
    await b.onUnauthorized(reg(), pull("demo"), bearer());
    const t0 = now;
    now = t0 + 3_569_000;
    const kept = await b.authorize(reg(), pull("demo"));
    now = t0 + 3_571_000;
    expect(await b.authorize(reg(), pull("demo"))).not.toBe(kept);

    // issued_at 20 s ago with a 60 s lifetime: 40 s left, refetched inside the 6 s margin.
    handler = (_s, res) => okToken(res, { expires_in: 60, issued_at: new Date(now - 20_000).toISOString() });
    /** A new token from `a` is still used `keptMs` later and replaced `replacedMs` later. */
    const refreshesBetween = async (a: ReturnType<typeof createAuthorizer>, keptMs: number, replacedMs: number): Promise<void> => {
      await a.onUnauthorized(reg(), pull("demo"), bearer());
      const first = await a.authorize(reg(), pull("demo"));
      const t0 = now;
      now = t0 + keptMs;
      expect(await a.authorize(reg(), pull("demo"))).toBe(first);
      now = t0 + replacedMs;
      expect(await a.authorize(reg(), pull("demo"))).not.toBe(first);
    };
    await refreshesBetween(createAuthorizer({ credentials: {}, now: () => now }), 33_000, 35_000);

    // issued_at 55 s ago (a token server whose clock is behind): more than half a lifetime, so it
    // counts from receipt. Taken at its word it expired 1 s into the margin: a token per request.
    let skewed = 0;
    handler = (_s, res) => {
      skewed++;
      okToken(res, { expires_in: 60, issued_at: new Date(now - 55_000).toISOString() });
    };
    const e = createAuthorizer({ credentials: {}, now: () => now });
    await e.onUnauthorized(reg(), pull("demo"), bearer());
    const got = await e.authorize(reg(), pull("demo"));
    now += 50_000;
    expect(await e.authorize(reg(), pull("demo"))).toBe(got);
    expect(skewed).toBe(1);

    // A margin option over a quarter of the lifetime is capped there.
    handler = (_s, res) => okToken(res, { expires_in: 60 });
    await refreshesBetween(createAuthorizer({ credentials: {}, now: () => now, refreshMarginMs: 120_000 }), 44_000, 46_000);

    // Missing expires_in: 60 s default; a fixed margin option.
    handler = (_s, res) => {
      counter++;
      res.end(JSON.stringify({ token: `tok-${counter}` }));
    };
    await refreshesBetween(createAuthorizer({ credentials: {}, now: () => now, refreshMarginMs: 1_000 }), 58_500, 59_500);
  });

  it("keeps using a still-valid token when the early refresh fails", async () => {
    let now = 1_000_000;
    handler = (_s, res) => okToken(res, { expires_in: 100 });
    const a = createAuthorizer({ credentials: {}, now: () => now });
    await a.onUnauthorized(reg(), pull("demo"), bearer());
    handler = (_s, res) => {
      res.statusCode = 503;
      res.end();
    };
    now += 95_000;
    expect(await a.authorize(reg(), pull("demo"))).toBe("Bearer tok-1");
    now += 10_000; // expired now: the failure surfaces
    expect((await caught(a.authorize(reg(), pull("demo")))).code).toBe("Unavailable");
  });

  it("shares one in-flight token fetch between 10 concurrent callers", async () => {
    delayMs = 100;
    const a = createAuthorizer({ credentials: {} });
    const challenge = bearer(',scope="repository:demo:pull"');
    const results = await Promise.all(Array.from({ length: 10 }, () => a.onUnauthorized(reg(), pull("demo"), challenge)));
    expect(results).toEqual(Array(10).fill(true));
    const headers = await Promise.all(Array.from({ length: 10 }, () => a.authorize(reg(), pull("demo"))));
    expect(new Set(headers)).toEqual(new Set(["Bearer tok-1"]));
    expect(seen).toHaveLength(1);

    // Proactive fetches for a new scope are shared as well.
    const more = await Promise.all(Array.from({ length: 10 }, () => a.authorize(reg(), pull("other"))));
    expect(new Set(more)).toEqual(new Set(["Bearer tok-2"]));
    expect(seen).toHaveLength(2);
  });

  it("an aborted caller does not cancel the shared fetch", async () => {
    delayMs = 100;
    const a = createAuthorizer({ credentials: {} });
    await a.onUnauthorized(reg(), pull("demo"), bearer());
    const ac = new AbortController();
    const p1 = a.authorize(reg(), pull("x"), ac.signal);
    const p2 = a.authorize(reg(), pull("x"));
    ac.abort();
    expect((await caught(p1)).code).toBe("Aborted");
    expect(await p2).toBe("Bearer tok-2");
    expect(seen).toHaveLength(2);
  });

  it("drops the cache on error=invalid_token and fetches once more", async () => {
    const a = createAuthorizer({ credentials: {} });
    await a.onUnauthorized(reg(), pull("demo"), bearer());
    const t1 = await a.authorize(reg(), pull("demo"));
    expect(t1).toBe("Bearer tok-1");
    expect(await a.onUnauthorized(reg(), pull("demo"), bearer(',error="invalid_token"'), undefined, t1)).toBe(true);
    const t2 = await a.authorize(reg(), pull("demo"));
    expect(t2).toBe("Bearer tok-2");
    // A late 401 of a request that still carried tok-1: no new fetch, retry with tok-2.
    expect(await a.onUnauthorized(reg(), pull("demo"), bearer(',error="invalid_token"'), undefined, t1)).toBe(true);
    expect(seen).toHaveLength(2);
    // The replacement is rejected as well: give up.
    expect(await a.onUnauthorized(reg(), pull("demo"), bearer(',error="invalid_token"'), undefined, t2)).toBe(false);
    // Without the sent value, each 401 is a rejection of the current token: fetch once more.
    const b = createAuthorizer({ credentials: {} });
    await b.onUnauthorized(reg(), pull("demo"), bearer());
    expect(await b.onUnauthorized(reg(), pull("demo"), bearer(',error="invalid_token"'))).toBe(true);
    expect(await b.authorize(reg(), pull("demo"))).toBe("Bearer tok-4");
  });

  it("gives up when the token server hands back the token that was just rejected", async () => {
    handler = (_s, res) => res.end(JSON.stringify({ token: "same" }));
    const a = createAuthorizer({ credentials: {} });
    expect(await a.onUnauthorized(reg(), pull("demo"), bearer())).toBe(true);
    expect(await a.onUnauthorized(reg(), pull("demo"), bearer(',error="invalid_token"'))).toBe(false);
  });

  it("merges the challenge's scope with the requested ones and reuses the merged token", async () => {
    const a = createAuthorizer({ credentials: {} });
    const req: AuthScope[] = [{ repository: "demo", actions: ["push"] }];
    await a.onUnauthorized(reg(), req, bearer(',scope="repository:demo:pull registry:catalog:*"'));
    expect(seen[0]!.query.getAll("scope")).toEqual(["registry:catalog:*", "repository:demo:pull,push"]);
    expect(await a.authorize(reg(), req)).toBe("Bearer tok-1");
    expect(seen).toHaveLength(1);
  });

  it("uses a configured registry token as is", async () => {
    const a = createAuthorizer({ credentials: { [regHost()]: { registryToken: "raw" } } });
    expect(await a.onUnauthorized(reg(), pull("demo"), bearer())).toBe(true);
    expect(await a.authorize(reg(), pull("demo"))).toBe("Bearer raw");
    expect(await a.onUnauthorized(reg(), pull("demo"), bearer(), undefined, "Bearer raw")).toBe(false);
    expect(seen).toHaveLength(0);
  });

  it("maps token server failures to typed errors without leaking secrets", async () => {
    handler = (s, res) => {
      res.statusCode = s.query.get("scope")?.includes("denied") ? 403 : 401;
      // A careless server echoing what it got.
      res.end(`bad credentials: Authorization: ${s.authorization ?? ""} token=leaked-tok password=hunter2`);
    };
    const a = createAuthorizer({ credentials: { [regHost()]: { username: "bob", password: "hunter2" } } });
    const e1 = await caught(a.onUnauthorized(reg(), pull("demo"), bearer()));
    expect(e1.code).toBe("Unauthorized");
    expect(e1.details["status"]).toBe(401);
    const e2 = await caught(a.onUnauthorized(reg(), pull("denied"), bearer()));
    expect(e2.code).toBe("Denied");
    for (const e of [e1, e2]) {
      const all = `${e.message} ${JSON.stringify(e.details)} ${String(e.stack)}`;
      for (const secret of ["hunter2", "leaked-tok", Buffer.from("bob:hunter2").toString("base64")]) expect(all).not.toContain(secret);
    }

    handler = (_s, res) => res.end("<html>not json</html>");
    expect((await caught(createAuthorizer({ credentials: {} }).onUnauthorized(reg(), pull("d"), bearer()))).code).toBe("Unauthorized");
    handler = (_s, res) => res.end(JSON.stringify({ expires_in: 10 }));
    expect((await caught(createAuthorizer({ credentials: {} }).onUnauthorized(reg(), pull("d"), bearer()))).message).toMatch(/without a token/);
    handler = (_s, res) => {
      res.statusCode = 429;
      res.end();
    };
    expect((await caught(createAuthorizer({ credentials: {} }).onUnauthorized(reg(), pull("d"), bearer()))).code).toBe("TooManyRequests");
  });

  it("refuses plain-HTTP realms that are not loopback, unless listed as insecure", async () => {
    const a = createAuthorizer({ credentials: {} });
    const ch = ['Bearer realm="http://auth.example.com/token",service="x"'];
    const e = await caught(a.onUnauthorized(new URL("https://reg.example.com/v2/"), pull("d"), ch));
    expect(e.code).toBe("Unauthorized");
    expect(e.message).toMatch(/plain HTTP/);
    const b = createAuthorizer({ credentials: {}, insecure: ["auth.example.com"], timeoutMs: 2_000 });
    // Allowed now: it fails later trying to reach the host, not on the rule.
    const e2 = await caught(b.onUnauthorized(new URL("https://reg.example.com/v2/"), pull("d"), ch));
    expect(e2.message).not.toMatch(/plain HTTP/);
    expect(await a.onUnauthorized(reg(), pull("d"), ['Bearer service="x"'])).toBe(false);
    expect((await caught(a.onUnauthorized(reg(), pull("d"), ['Bearer realm="ftp://x/"']))).code).toBe("Unauthorized");
  });

  it("over plain HTTP sends credentials only to a realm on the registry's own host name", async () => {
    const creds = { username: "u", password: "p" };
    // Challenge from http://localhost:P, realm on 127.0.0.1: another host name → anonymous.
    const other = new URL(`http://localhost:${port + 1}/v2/`);
    const a = createAuthorizer({ credentials: { [other.host]: creds } });
    await a.onUnauthorized(other, pull("d"), bearer());
    expect(seen[0]!.authorization).toBeUndefined();
    // Same host name, other port → credentials go.
    const b = createAuthorizer({ credentials: { [regHost()]: creds } });
    await b.onUnauthorized(reg(), pull("d"), bearer());
    expect(seen[1]!.authorization).toBe(basic("u", "p"));
  });
});

describe("authorizer: basic", () => {
  it("answers a Basic challenge with credentials, then sends them preemptively", async () => {
    const a = createAuthorizer({ credentials: { [regHost()]: { username: "u", password: "p:w" } } });
    expect(await a.authorize(reg(), pull("d"))).toBeUndefined();
    expect(await a.onUnauthorized(reg(), pull("d"), ['Basic realm="Registry Realm"'])).toBe(true);
    expect(await a.authorize(reg(), pull("d"))).toBe(basic("u", "p:w"));
    expect(await a.authorize(new URL(`http://${regHost()}/v2/other/blobs/x`), pull("other"))).toBe(basic("u", "p:w"));
    // The same credentials refused: give up.
    expect(await a.onUnauthorized(reg(), pull("d"), ['Basic realm="Registry Realm"'], undefined, basic("u", "p:w"))).toBe(false);
    expect(seen).toHaveLength(0);
  });

  it("gives up on Basic without credentials, or with only a token", async () => {
    expect(await createAuthorizer({ credentials: {} }).onUnauthorized(reg(), [], ['Basic realm="r"'])).toBe(false);
    expect(await createAuthorizer({ credentials: { [regHost()]: { identityToken: "x" } } }).onUnauthorized(reg(), [], ['Basic realm="r"'])).toBe(false);
    expect(await createAuthorizer({ credentials: {} }).onUnauthorized(reg(), [], [])).toBe(false);
    expect(await createAuthorizer({ credentials: {} }).onUnauthorized(reg(), [], ["Negotiate abc=="])).toBe(false);
  });

  it("prefers Bearer when both are offered", async () => {
    const a = createAuthorizer({ credentials: { [regHost()]: { username: "u", password: "p" } } });
    expect(await a.onUnauthorized(reg(), pull("d"), [`Basic realm="r", ${bearer()[0]}`])).toBe(true);
    expect(await a.authorize(reg(), pull("d"))).toBe("Bearer tok-1");
  });
});

describe("scopes", () => {
  it("normalises and merges scope strings", () => {
    expect(scopeStrings([{ repository: "b", actions: ["push", "pull", "pull"] }, { repository: "a", actions: ["pull"] }])).toEqual([
      "repository:a:pull",
      "repository:b:pull,push",
    ]);
    expect(mergeScopes(["repository:a:pull"], ["repository:a:push", "", "registry:catalog:*"])).toEqual(["registry:catalog:*", "repository:a:pull,push"]);
    expect(mergeScopes(["repository:127.0.0.1:5000/a:pull"], [])).toEqual(["repository:127.0.0.1:5000/a:pull"]);
  });
});

describe("authorizer: Docker Hub through an injected dispatcher", () => {
  it("uses docker.io credentials for registry-1.docker.io and HTTPS realms on another host", async () => {
    const { MockAgent } = await import("undici");
    const agent = new MockAgent();
    agent.disableNetConnect();
    const got: Array<{ path: string; authorization: unknown }> = [];
    agent
      .get("https://auth.docker.io")
      .intercept({ path: (p: string) => p.startsWith("/token?"), method: "GET" })
      .reply((opts) => {
        const h = opts.headers as Record<string, string> | string[];
        const authorization = Array.isArray(h) ? h[h.findIndex((x) => String(x).toLowerCase() === "authorization") + 1] : h["authorization"];
        got.push({ path: opts.path, authorization });
        return { statusCode: 200, data: JSON.stringify({ token: "hub-token", expires_in: 300 }) };
      })
      .persist();
    try {
      const a = createAuthorizer({ dispatcher: agent, credentials: { "https://index.docker.io/v1/": { username: "me", password: "pw" } } });
      const url = new URL("https://registry-1.docker.io/v2/library/alpine/manifests/latest");
      const ch = ['Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"'];
      expect(await a.onUnauthorized(url, pull("library/alpine"), ch)).toBe(true);
      expect(await a.authorize(url, pull("library/alpine"))).toBe("Bearer hub-token");
      expect(got).toHaveLength(1);
      expect(got[0]!.authorization).toBe(basic("me", "pw"));
      const q = new URL(got[0]!.path, "https://x").searchParams;
      expect(q.get("service")).toBe("registry.docker.io");
      expect(q.getAll("scope")).toEqual(["repository:library/alpine:pull"]);
    } finally {
      await agent.close();
    }
  });
});

describe("authorizer: shared lookups and cache bounds", () => {
  it("a caller aborting a slow credential lookup does not fail the others", async () => {
    let calls = 0;
    const store = {
      async get() {
        calls++;
        await new Promise((r) => setTimeout(r, 100));
        return { username: "u", password: "p" };
      },
    };
    const a = createAuthorizer({ credentials: store });
    const ac = new AbortController();
    const p1 = a.onUnauthorized(reg(), pull("d"), ['Basic realm="r"'], ac.signal);
    const p2 = a.onUnauthorized(reg(), pull("d"), ['Basic realm="r"']);
    ac.abort();
    expect((await caught(p1)).code).toBe("Aborted");
    expect(await p2).toBe(true);
    expect(await a.authorize(reg(), pull("d"))).toBe(basic("u", "p"));
    expect(calls).toBe(1);
  });

  it("keeps at most 512 tokens, dropping the oldest", async () => {
    const a = createAuthorizer({ credentials: {} });
    await a.onUnauthorized(reg(), pull("r0"), bearer());
    for (let i = 1; i < 600; i++) await a.authorize(reg(), pull(`r${i}`));
    expect(seen).toHaveLength(600);
    await a.authorize(reg(), pull("r599"));
    expect(seen).toHaveLength(600);
    await a.authorize(reg(), pull("r0"));
    expect(seen).toHaveLength(601);
  });
});
