/**
 * The authorizer end to end: ferry's resolver, fetcher and pusher against a real docker-registry
 * protected by htpasswd Basic auth, and by token auth with the testkit token server.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, expect, it } from "vitest";
import { digestOf, digestStream, MediaTypes, type Descriptor } from "@ferry/core";
import { describeWithRegistry, makeImage, type MadeImage } from "@ferry/testkit";
import { createRegistryResolver, type RegistryResolver } from "../resolver.ts";
import { createAuthorizer, type AuthorizerOptions } from "./authorizer.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function resolverWith(options: AuthorizerOptions): RegistryResolver {
  return createRegistryResolver({ authorizer: createAuthorizer(options), retry: { maxAttempts: 2, minDelayMs: 10, maxDelayMs: 20 } });
}

function blob(text: string): { desc: Descriptor; source: { open: () => Readable } } {
  const data = Buffer.from(text);
  return {
    desc: { mediaType: MediaTypes.OciLayer, digest: digestOf(data), size: data.length },
    source: { open: () => Readable.from([data]) },
  };
}

async function fetchAll(resolver: RegistryResolver, image: MadeImage): Promise<void> {
  const r = await resolver.resolve(image.reference);
  expect(r.descriptor.digest).toBe(image.digest);
  const f = await resolver.fetcher(r.name);
  for (const d of [image.root, ...image.configs, ...image.layers]) {
    expect(await digestStream(await f.fetch(d))).toEqual({ digest: d.digest, size: d.size });
  }
}

// distribution logs every refused request (the 401s) as "error authorizing context".
const count401 = (log: string) => (log.match(/msg="error authorizing context/g) ?? []).length;

describeWithRegistry(
  "auth against docker-registry with htpasswd (Basic)",
  (ctx) => {
    let image: MadeImage;
    let work: string;
    const creds = () => ({ [ctx.registry.host]: { username: "ferry", password: "pa:ss word" } });

    beforeAll(async () => {
      work = await mkdtemp(join(tmpdir(), "ferry-auth-basic-"));
      image = await makeImage(ctx.registry.host, "basic/app:1", {
        layers: 2,
        layerSize: 64 * 1024,
        layoutDir: join(work, "img"),
        creds: { username: "ferry", password: "pa:ss word" },
      });
    }, 120_000);
    afterAll(async () => {
      if (work) await rm(work, { recursive: true, force: true });
    });

    it("anonymous and wrong credentials get Unauthorized, without the password in the error", async () => {
      const anon = resolverWith({ credentials: {} });
      const wrong = resolverWith({ credentials: { [ctx.registry.host]: { username: "ferry", password: "nope-secret" } } });
      try {
        await expect(anon.resolve(image.reference)).rejects.toMatchObject({ code: "Unauthorized" });
        const err = (await wrong.resolve(image.reference).catch((e: unknown) => e)) as Error;
        expect(err).toMatchObject({ code: "Unauthorized" });
        const text = `${err.message} ${JSON.stringify((err as { details?: unknown }).details)}`;
        expect(text).not.toContain("nope-secret");
        expect(text).not.toContain(Buffer.from("ferry:nope-secret").toString("base64"));
      } finally {
        await anon.close();
        await wrong.close();
      }
    });

    it("pulls and pushes with Basic, sent preemptively after the first challenge", async () => {
      const resolver = resolverWith({ credentials: creds() });
      try {
        const before = count401(ctx.registry.readLog());
        await fetchAll(resolver, image);
        const b = blob(`basic push ${Date.now()}`);
        const p = await resolver.pusher(`${ctx.registry.host}/basic/pushed`);
        expect(await p.push(b.desc, b.source)).toBe("pushed");
        expect(await p.exists(b.desc)).toBe(true);
        // Once the host is known to want Basic, no request is challenged again.
        await sleep(200); // the registry writes its log line after the response
        expect(count401(ctx.registry.readLog()) - before).toBe(1);
      } finally {
        await resolver.close();
      }
    });
  },
  { tools: ["skopeo", "htpasswd"], auth: { htpasswd: { username: "ferry", password: "pa:ss word" } } },
);

describeWithRegistry(
  "auth against docker-registry with token auth (testkit token server)",
  (ctx) => {
    let image: MadeImage;
    let work: string;
    const creds = () => ({ [ctx.registry.host]: { username: "ci", password: "s3cret" } });

    beforeAll(async () => {
      work = await mkdtemp(join(tmpdir(), "ferry-auth-token-"));
      image = await makeImage(ctx.registry.host, "tok/app:1", {
        layers: 2,
        layerSize: 64 * 1024,
        layoutDir: join(work, "img"),
        creds: { username: "ci", password: "s3cret" },
      });
    }, 120_000);
    afterAll(async () => {
      ctx.tokens.setExpiresIn(300);
      if (work) await rm(work, { recursive: true, force: true });
    });

    it("anonymous gets no access; wrong password is Unauthorized from the token server", async () => {
      const anon = resolverWith({ credentials: {} });
      const wrong = resolverWith({ credentials: { [ctx.registry.host]: { username: "ci", password: "bad-pw-123" } } });
      try {
        await expect(anon.resolve(image.reference)).rejects.toMatchObject({ code: "Unauthorized" });
        const err = (await wrong.resolve(image.reference).catch((e: unknown) => e)) as Error;
        expect(err).toMatchObject({ code: "Unauthorized" });
        expect(err.message).toMatch(/token server/);
        expect(`${err.message} ${JSON.stringify((err as { details?: unknown }).details)}`).not.toContain("bad-pw-123");
      } finally {
        await anon.close();
        await wrong.close();
      }
    });

    it("pulls with one token per scope set and pushes with a pull,push token", async () => {
      const resolver = resolverWith({ credentials: creds() });
      try {
        ctx.tokens.log.length = 0;
        const issued = ctx.tokens.issued;
        await fetchAll(resolver, image);
        expect(ctx.tokens.issued - issued).toBe(1);
        expect(ctx.tokens.log[0]).toMatchObject({ grant: "basic", account: "ci", scopes: ["repository:tok/app:pull"] });

        const b = blob(`token push ${Date.now()}`);
        const p = await resolver.pusher(`${ctx.registry.host}/tok/pushed`);
        expect(await p.push(b.desc, b.source)).toBe("pushed");
        expect(await p.exists(b.desc)).toBe(true);
        const pushScopes = ctx.tokens.log.slice(1).flatMap((l) => l.scopes);
        expect(pushScopes).toContain("repository:tok/pushed:pull,push");
        // HEAD, POST, PUT, HEAD share one token (fetched proactively or after one challenge).
        expect(ctx.tokens.issued - issued).toBe(2);
      } finally {
        await resolver.close();
      }
    });

    it("uses the OAuth2 password grant against the token server", async () => {
      const resolver = resolverWith({ credentials: creds(), passwordGrant: true });
      try {
        ctx.tokens.log.length = 0;
        await fetchAll(resolver, image);
        expect(ctx.tokens.log.map((l) => l.grant)).toEqual(["password"]);
      } finally {
        await resolver.close();
      }
    });

    it("refreshes a short-lived token before it expires instead of taking a 401", async () => {
      ctx.tokens.setExpiresIn(3);
      const resolver = resolverWith({ credentials: creds() });
      try {
        await fetchAll(resolver, image);
        await sleep(200);
        const before401 = count401(ctx.registry.readLog());
        const issued = ctx.tokens.issued;
        await sleep(3_200); // past expires_in (the token server shortens exp to match)
        await fetchAll(resolver, image);
        await sleep(200);
        expect(ctx.tokens.issued - issued).toBeGreaterThanOrEqual(1);
        expect(count401(ctx.registry.readLog()) - before401).toBe(0);
      } finally {
        ctx.tokens.setExpiresIn(300);
        await resolver.close();
      }
    }, 30_000);

    it("drops a token the registry calls invalid and fetches once more", async () => {
      ctx.tokens.setExpiresIn(3);
      // A frozen clock: the authorizer believes its token is fresh after the registry stopped taking it.
      const frozen = Date.now();
      const resolver = resolverWith({ credentials: creds(), now: () => frozen });
      try {
        await fetchAll(resolver, image);
        await sleep(3_500);
        ctx.tokens.setExpiresIn(300);
        const issued = ctx.tokens.issued;
        await sleep(200);
        const before401 = count401(ctx.registry.readLog());
        await fetchAll(resolver, image);
        await sleep(200);
        expect(ctx.tokens.issued - issued).toBe(1);
        expect(count401(ctx.registry.readLog()) - before401).toBe(1);
      } finally {
        ctx.tokens.setExpiresIn(300);
        await resolver.close();
      }
    }, 30_000);
  },
  { tools: ["skopeo"], tokenAuth: { users: { ci: "s3cret" }, expSkew: 60 } },
);
