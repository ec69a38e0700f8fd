/**
 * The auth half of the conformance matrix: the same client-level assertions against this
 * registry's Basic and Bearer auth and against docker-registry 2.8 with htpasswd and with the
 * testkit token server.
 */
import { requireTools, startDockerRegistry, startTokenServer } from "@ferry/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorCode, startRegistry } from "./helpers.ts";

interface Server {
  url: string;
  stop(): Promise<void>;
}

const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString("base64")}`;

function challenge(h: string | null): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of (h ?? "").matchAll(/(\w+)="([^"]*)"/g)) out[m[1]!] = m[2]!;
  return out;
}

describe.each<{ name: string; run: boolean; start(): Promise<Server> }>([
  {
    name: "ferry registry",
    run: true,
    async start() {
      const r = await startRegistry({ auth: { users: { u: "p" } } });
      return { url: r.url, stop: () => r.close() };
    },
  },
  {
    name: "docker-registry 2.8 (htpasswd)",
    run: requireTools("docker-registry", "htpasswd"),
    async start() {
      const r = await startDockerRegistry({ logLevel: "error", auth: { htpasswd: { username: "u", password: "p" } } });
      return { url: r.url, stop: () => r.stop() };
    },
  },
])("Basic auth conformance: $name", (target) => {
  let s: Server | undefined;
  beforeAll(async () => {
    if (target.run) s = await target.start();
  });
  afterAll(async () => s?.stop());

  it.skipIf(!target.run)("challenges, refuses bad credentials, accepts good ones", async () => {
    const none = await fetch(`${s!.url}/v2/`);
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toMatch(/^Basic realm="[^"]+"/);
    expect(await errorCode(none)).toBe("UNAUTHORIZED");
    expect((await fetch(`${s!.url}/v2/`, { headers: { Authorization: basic("u", "wrong") } })).status).toBe(401);
    expect((await fetch(`${s!.url}/v2/`, { headers: { Authorization: basic("u", "p") } })).status).toBe(200);
    const post = await fetch(`${s!.url}/v2/conf/basic/blobs/uploads/`, { method: "POST", headers: { Authorization: basic("u", "p") } });
    expect(post.status).toBe(202);
  });
});

describe.each<{ name: string; run: boolean; start(): Promise<Server> }>([
  {
    name: "ferry registry (built-in token endpoint)",
    run: true,
    async start() {
      const r = await startRegistry({ auth: { scheme: "bearer", users: { u: "p" } } });
      return { url: r.url, stop: () => r.close() };
    },
  },
  {
    name: "docker-registry 2.8 (testkit token server)",
    run: requireTools("docker-registry", "openssl"),
    async start() {
      const ts = await startTokenServer({ users: { u: "p" } });
      const r = await startDockerRegistry({ logLevel: "error", auth: ts.registryAuth() });
      return {
        url: r.url,
        stop: async () => {
          await r.stop();
          await ts.stop();
        },
      };
    },
  },
])("Bearer auth conformance: $name", (target) => {
  let s: Server | undefined;
  beforeAll(async () => {
    if (target.run) s = await target.start();
  });
  afterAll(async () => s?.stop());

  async function token(ch: Record<string, string>, scope: string): Promise<string> {
    const u = new URL(ch.realm!);
    u.searchParams.set("service", ch.service!);
    u.searchParams.set("scope", scope);
    const res = await fetch(u, { headers: { Authorization: basic("u", "p") } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { token?: string; access_token?: string };
    const t = body.token ?? body.access_token;
    expect(t).toBeTruthy();
    return t!;
  }

  it.skipIf(!target.run)("challenge → token → retry; insufficient_scope; invalid_token", async () => {
    const url = `${s!.url}/v2/conf/bearer/blobs/uploads/`;
    const first = await fetch(url, { method: "POST" });
    expect(first.status).toBe(401);
    expect(first.headers.get("www-authenticate")).toMatch(/^Bearer /);
    const ch = challenge(first.headers.get("www-authenticate"));
    expect(ch.realm).toMatch(/^http:\/\/127\.0\.0\.1:\d+\//);
    expect(ch.service).toBeTruthy();
    // distribution 2.8 lists the actions in map order (`push,pull` or `pull,push`): compare them as a set.
    const [scopeType, scopeName, scopeActions = ""] = ch.scope!.split(":");
    expect([scopeType, scopeName, scopeActions.split(",").sort().join(",")]).toEqual(["repository", "conf/bearer", "pull,push"]);

    const full = await token(ch, ch.scope!);
    expect((await fetch(url, { method: "POST", headers: { Authorization: `Bearer ${full}` } })).status).toBe(202);

    const pullOnly = await token(ch, "repository:conf/bearer:pull");
    const insufficient = await fetch(url, { method: "POST", headers: { Authorization: `Bearer ${pullOnly}` } });
    expect(insufficient.status).toBe(401);
    expect(insufficient.headers.get("www-authenticate")).toContain('error="insufficient_scope"');

    const bad = await fetch(url, { method: "POST", headers: { Authorization: "Bearer not.a.token" } });
    expect(bad.status).toBe(401);
    expect(bad.headers.get("www-authenticate")).toContain('error="invalid_token"');
  });
});
