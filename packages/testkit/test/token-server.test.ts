import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateKeyPairSync } from "node:crypto";
import { libtrustKeyId, parseScope, requireTools, startDockerRegistry, startTokenServer, type RunningRegistry, type TokenServer } from "../src/index.ts";

const basic = (u: string, p: string): string => `Basic ${Buffer.from(`${u}:${p}`).toString("base64")}`;

function claims(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split(".")[1]!, "base64url").toString());
}
function header(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split(".")[0]!, "base64url").toString());
}

describe("helpers", () => {
  it("parses scopes whose names contain colons", () => {
    expect(parseScope("repository:team/app:pull,push")).toEqual({ type: "repository", name: "team/app", actions: ["pull", "push"] });
    expect(parseScope("repository:127.0.0.1:5000/app:pull")).toMatchObject({ name: "127.0.0.1:5000/app", actions: ["pull"] });
    expect(parseScope("registry:catalog:*")).toEqual({ type: "registry", name: "catalog", actions: ["*"] });
    expect(parseScope("nonsense")).toBeUndefined();
  });

  it("formats a libtrust key ID as 12 groups of 4 base32 characters", () => {
    const { publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    expect(libtrustKeyId(publicKey)).toMatch(/^([A-Z2-7]{4}:){11}[A-Z2-7]{4}$/);
  });
});

for (const keyHint of ["x5c", "kid"] as const) {
  describe.runIf(requireTools("docker-registry", "openssl"))(`token auth with docker-registry (${keyHint} header)`, () => {
    let ts: TokenServer;
    let reg: RunningRegistry;
    beforeAll(async () => {
      ts = await startTokenServer({ users: { alice: "wonderland", reader: { password: "r", actions: ["pull"] } }, keyHint });
      reg = await startDockerRegistry({ auth: ts.registryAuth() });
    });
    afterAll(async () => {
      await reg?.stop();
      await ts?.stop();
    });

    it("GET /v2/ is 401 with a Bearer challenge, 200 with a token", async () => {
      const anon = await fetch(`${reg.url}/v2/`);
      expect(anon.status).toBe(401);
      const challenge = anon.headers.get("www-authenticate") ?? "";
      expect(challenge).toContain(`Bearer realm="${ts.realm}"`);
      expect(challenge).toContain(`service="${ts.service}"`);

      const before = ts.issued;
      const r = await fetch(`${ts.realm}?service=${ts.service}`, { headers: { authorization: basic("alice", "wonderland") } });
      expect(r.status).toBe(200);
      const body = (await r.json()) as { token: string; access_token: string; expires_in: number };
      expect(body.token).toBe(body.access_token);
      expect(body.expires_in).toBe(300);
      expect(ts.issued).toBe(before + 1);
      expect(keyHint === "kid" ? header(body.token).kid : header(body.token).x5c).toBeDefined();

      expect((await fetch(`${reg.url}/v2/`, { headers: { authorization: `Bearer ${body.token}` } })).status).toBe(200);
      expect((await fetch(`${reg.url}/v2/`, { headers: { authorization: "Bearer x.y.z" } })).status).toBe(401);
    });

    it("grants scoped access: push for alice, pull only for reader", async () => {
      const scope = "repository:auth/demo:pull,push";
      const tok = async (user: string, pw: string): Promise<string> => {
        const r = await fetch(`${ts.realm}?service=${ts.service}&scope=${encodeURIComponent(scope)}`, {
          headers: { authorization: basic(user, pw) },
        });
        return ((await r.json()) as { token: string }).token;
      };
      const post = (t: string): Promise<Response> =>
        fetch(`${reg.url}/v2/auth/demo/blobs/uploads/`, { method: "POST", headers: { authorization: `Bearer ${t}` } });
      const alice = await tok("alice", "wonderland");
      expect(claims(alice).access).toEqual([{ type: "repository", name: "auth/demo", actions: ["pull", "push"] }]);
      expect((await post(alice)).status).toBe(202);
      const reader = await tok("reader", "r");
      expect(claims(reader).access).toEqual([{ type: "repository", name: "auth/demo", actions: ["pull"] }]);
      expect((await post(reader)).status).toBe(401);
    });

    it("refuses bad credentials", async () => {
      const refused = ts.refused;
      const r = await fetch(ts.realm, { headers: { authorization: basic("alice", "nope") } });
      expect(r.status).toBe(401);
      expect(ts.refused).toBe(refused + 1);
    });
  });
}

describe.runIf(requireTools("docker-registry", "openssl"))("token server flows", () => {
  let ts: TokenServer;
  let reg: RunningRegistry;
  beforeAll(async () => {
    ts = await startTokenServer({ users: { bob: "builder" }, expiresIn: 2, expSkew: 60, anonymousActions: ["pull"] });
    reg = await startDockerRegistry({ auth: ts.registryAuth() });
  });
  afterAll(async () => {
    await reg?.stop();
    await ts?.stop();
  });

  it("POST grant_type=password with access_type=offline returns a refresh token; refresh_token grant works", async () => {
    const form = new URLSearchParams({
      grant_type: "password",
      username: "bob",
      password: "builder",
      service: ts.service,
      scope: "repository:x/y:pull",
      client_id: "ferry-test",
      access_type: "offline",
    });
    const r = await fetch(ts.realm, { method: "POST", body: form });
    expect(r.status).toBe(200);
    const body = (await r.json()) as { access_token: string; refresh_token?: string; expires_in: number; scope: string };
    expect(body.refresh_token).toBeTruthy();
    expect(body.expires_in).toBe(2);
    expect(body.scope).toBe("repository:x/y:pull");

    const again = await fetch(ts.realm, {
      method: "POST",
      body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: body.refresh_token!, service: ts.service, scope: "repository:x/y:pull,push", client_id: "t" }),
    });
    expect(again.status).toBe(200);
    const refreshed = (await again.json()) as { access_token: string };
    expect(claims(refreshed.access_token)).toMatchObject({ sub: "bob", access: [{ name: "x/y", actions: ["pull", "push"] }] });
    expect(ts.log.map((l) => l.grant).slice(-2)).toEqual(["password", "refresh_token"]);

    const bad = await fetch(ts.realm, { method: "POST", body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: "forged" }) });
    expect(bad.status).toBe(401);
    const noOffline = await fetch(ts.realm, {
      method: "POST",
      body: new URLSearchParams({ grant_type: "password", username: "bob", password: "builder", service: ts.service }),
    });
    expect(((await noOffline.json()) as { refresh_token?: string }).refresh_token).toBeUndefined();
    const wrongGrant = await fetch(ts.realm, { method: "POST", body: new URLSearchParams({ grant_type: "magic" }) });
    expect(wrongGrant.status).toBe(400);
  });

  it("GET offline_token=true returns a refresh token; anonymous gets only anonymousActions", async () => {
    const r = await fetch(`${ts.realm}?service=${ts.service}&offline_token=true&scope=repository:a/b:pull`, {
      headers: { authorization: basic("bob", "builder") },
    });
    expect(((await r.json()) as { refresh_token?: string }).refresh_token).toBeTruthy();
    const anon = await fetch(`${ts.realm}?service=${ts.service}&scope=repository:a/b:pull,push`);
    const t = ((await anon.json()) as { token: string }).token;
    expect(claims(t)).toMatchObject({ sub: "", access: [{ name: "a/b", actions: ["pull"] }] });
    expect(ts.log.at(-1)!.grant).toBe("anonymous");
  });

  it("short-lived tokens with expSkew really expire at the registry", async () => {
    const r = await fetch(`${ts.realm}?service=${ts.service}`, { headers: { authorization: basic("bob", "builder") } });
    const { token } = (await r.json()) as { token: string };
    expect((await fetch(`${reg.url}/v2/`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    const expired = ts.mint("bob", [], -1);
    expect((await fetch(`${reg.url}/v2/`, { headers: { authorization: `Bearer ${expired}` } })).status).toBe(401);
  });
});
