import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorCode, randomBlob, sha256, startRegistry, type Running } from "./helpers.ts";

const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString("base64")}`;

describe("Basic auth", () => {
  let r: Running;
  beforeAll(async () => {
    r = await startRegistry({
      auth: {
        users: { alice: "secret", bob: "hunter2" },
        anonymousPull: true,
        authorize: (user, access) => (user === "bob" ? access.actions.filter((a) => a === "pull") : user === "alice" ? access.actions : access.actions.filter((a) => a === "pull")),
      },
    });
  });
  afterAll(async () => r.close());

  it("challenges without credentials and rejects wrong ones", async () => {
    const none = await fetch(`${r.url}/v2/x/blobs/uploads/`, { method: "POST" });
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toBe('Basic realm="ferry"');
    expect(await errorCode(none)).toBe("UNAUTHORIZED");
    const wrong = await fetch(`${r.url}/v2/`, { headers: { Authorization: basic("alice", "nope") } });
    expect(wrong.status).toBe(401);
  });

  it("lets a user push, denies a read-only user with 403 DENIED, lets anonymous pull", async () => {
    const ok = await fetch(`${r.url}/v2/`, { headers: { Authorization: basic("alice", "secret") } });
    expect(ok.status).toBe(200);
    const data = randomBlob(10);
    const push = await fetch(`${r.url}/v2/x/blobs/uploads/?digest=${sha256(data)}`, {
      method: "POST",
      body: data,
      headers: { Authorization: basic("alice", "secret") },
    });
    expect(push.status).toBe(201);
    const denied = await fetch(`${r.url}/v2/x/blobs/uploads/`, { method: "POST", headers: { Authorization: basic("bob", "hunter2") } });
    expect(denied.status).toBe(403);
    expect(await errorCode(denied)).toBe("DENIED");
    const anon = await fetch(`${r.url}/v2/x/blobs/${sha256(data)}`);
    expect(anon.status).toBe(200);
  });
});

describe("Bearer auth with the built-in token endpoint", () => {
  let r: Running;
  beforeAll(async () => {
    r = await startRegistry({
      auth: {
        scheme: "bearer",
        users: { alice: "secret", reader: "r" },
        authorize: (user, access) => (user === "alice" ? access.actions : user === "reader" ? access.actions.filter((a) => a === "pull") : []),
        token: { service: "test-registry", expiresInSec: 60 },
      },
    });
  });
  afterAll(async () => r.close());

  const parseChallenge = (h: string | null) => {
    const out: Record<string, string> = {};
    for (const m of (h ?? "").matchAll(/(\w+)="([^"]*)"/g)) out[m[1]!] = m[2]!;
    return out;
  };

  async function token(scope: string, auth?: string): Promise<string> {
    const res = await fetch(`${r.url}/token?service=test-registry&scope=${encodeURIComponent(scope)}`, {
      headers: auth === undefined ? {} : { Authorization: auth },
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { token: string; access_token: string; expires_in: number };
    expect(body.access_token).toBe(body.token);
    expect(body.expires_in).toBe(60);
    return body.token;
  }

  it("runs the challenge → token → retry flow", async () => {
    const res = await fetch(`${r.url}/v2/team/app/blobs/uploads/`, { method: "POST" });
    expect(res.status).toBe(401);
    const ch = parseChallenge(res.headers.get("www-authenticate"));
    expect(res.headers.get("www-authenticate")).toMatch(/^Bearer /);
    expect(ch.realm).toBe(`${r.url}/token`);
    expect(ch.service).toBe("test-registry");
    expect(ch.scope).toBe("repository:team/app:pull,push");

    const before = r.registry.authStats!.tokensIssued;
    r.registry.authStats!.scopes.length = 0;
    const t = await token(ch.scope!, basic("alice", "secret"));
    expect(r.registry.authStats!.tokensIssued).toBe(before + 1);
    expect(r.registry.authStats!.scopes).toEqual(["repository:team/app:pull,push"]);
    const retry = await fetch(`${r.url}/v2/team/app/blobs/uploads/`, { method: "POST", headers: { Authorization: `Bearer ${t}` } });
    expect(retry.status).toBe(202);
  });

  it("answers insufficient_scope when the token lacks an action, and rejects forged tokens", async () => {
    const t = await token("repository:team/app:pull,push", basic("reader", "r"));
    const pull = await fetch(`${r.url}/v2/team/app/tags/list`, { headers: { Authorization: `Bearer ${t}` } });
    expect(pull.status).toBe(404); // authorised; the repository is just empty
    const push = await fetch(`${r.url}/v2/team/app/blobs/uploads/`, { method: "POST", headers: { Authorization: `Bearer ${t}` } });
    expect(push.status).toBe(401);
    expect(push.headers.get("www-authenticate")).toContain('error="insufficient_scope"');

    const [h, p] = t.split(".");
    const claims = JSON.parse(Buffer.from(p!, "base64url").toString()) as { access: Array<{ actions: string[] }> };
    claims.access[0]!.actions = ["pull", "push"];
    const forged = `${h}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.${t.split(".")[2]}`;
    const bad = await fetch(`${r.url}/v2/team/app/blobs/uploads/`, { method: "POST", headers: { Authorization: `Bearer ${forged}` } });
    expect(bad.status).toBe(401);
    expect(bad.headers.get("www-authenticate")).toContain('error="invalid_token"');
  });

  it("issues anonymous tokens without actions and refuses wrong passwords", async () => {
    const t = await token("repository:team/app:pull");
    const res = await fetch(`${r.url}/v2/team/app/tags/list`, { headers: { Authorization: `Bearer ${t}` } });
    expect(res.status).toBe(401);
    const wrong = await fetch(`${r.url}/token?service=test-registry&scope=repository:team/app:pull`, {
      headers: { Authorization: basic("alice", "wrong") },
    });
    expect(wrong.status).toBe(401);
  });

  it("issues refresh tokens for offline access and exchanges them; a refresh token is no access token", async () => {
    const res = await fetch(`${r.url}/token`, {
      method: "POST",
      body: new URLSearchParams({ grant_type: "password", username: "alice", password: "secret", service: "test-registry", scope: "repository:team/app:pull", access_type: "offline" }),
    });
    const { refresh_token } = (await res.json()) as { refresh_token?: string };
    expect(refresh_token).toBeTruthy();
    const misuse = await fetch(`${r.url}/v2/team/app/tags/list`, { headers: { Authorization: `Bearer ${refresh_token}` } });
    expect(misuse.status).toBe(401);
    const again = await fetch(`${r.url}/token`, {
      method: "POST",
      body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: refresh_token!, service: "test-registry", scope: "repository:team/app:pull,push" }),
    });
    expect(again.status).toBe(200);
    const { access_token } = (await again.json()) as { access_token: string };
    const push = await fetch(`${r.url}/v2/team/app/blobs/uploads/`, { method: "POST", headers: { Authorization: `Bearer ${access_token}` } });
    expect(push.status).toBe(202);
    const bogus = await fetch(`${r.url}/token`, {
      method: "POST",
      body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: access_token, service: "test-registry" }),
    });
    expect(bogus.status).toBe(401);
    const basicOffline = await fetch(`${r.url}/token?service=test-registry&offline_token=true`, { headers: { Authorization: basic("alice", "secret") } });
    expect(((await basicOffline.json()) as { refresh_token?: string }).refresh_token).toBeTruthy();
  });

  it("accepts POST grant_type=password", async () => {
    const res = await fetch(`${r.url}/token`, {
      method: "POST",
      body: new URLSearchParams({ grant_type: "password", username: "alice", password: "secret", service: "test-registry", scope: "repository:team/app:pull" }),
    });
    expect(res.status).toBe(200);
    const { access_token } = (await res.json()) as { access_token: string };
    const probe = await fetch(`${r.url}/v2/`, { headers: { Authorization: `Bearer ${access_token}` } });
    expect(probe.status).toBe(200);
  });
});

describe("Bearer token expiry", () => {
  it("refuses an expired token with invalid_token", async () => {
    const r = await startRegistry({ auth: { scheme: "bearer", users: { u: "p" }, token: { expiresInSec: 1 } } });
    try {
      const res = await fetch(`${r.url}/token?service=ferry-registry&scope=repository:x:pull`, { headers: { Authorization: basic("u", "p") } });
      const { token } = (await res.json()) as { token: string };
      expect((await fetch(`${r.url}/v2/`, { headers: { Authorization: `Bearer ${token}` } })).status).toBe(200);
      await new Promise((resolve) => setTimeout(resolve, 2100));
      const late = await fetch(`${r.url}/v2/`, { headers: { Authorization: `Bearer ${token}` } });
      expect(late.status).toBe(401);
      expect(late.headers.get("www-authenticate")).toContain('error="invalid_token"');
    } finally {
      await r.close();
    }
  });
});
