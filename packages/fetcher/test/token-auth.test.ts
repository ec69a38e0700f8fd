/**
 * The transport behind token auth, against ferry's embedded registry (its built-in token endpoint)
 * and docker-registry 2.8 (the testkit token server): catalog scope from the challenge, and
 * anonymous access refused without leaking credentials.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createReadStream } from "node:fs";
import { afterAll, beforeAll, expect, it } from "vitest";
import { digestHex, type Descriptor } from "@ferry/core";
import { buildImage, type BuiltLayout } from "@ferry/testkit";
import { createRegistryResolver } from "../src/index.ts";
import { describeEachServer } from "./servers.ts";

describeEachServer(
  "registry transport with token auth",
  (ctx) => {
    let work: string;
    let layout: BuiltLayout;
    const credentials = () => ({ [ctx.server.host]: { username: "ci", password: "s3cret" } });
    const src = (d: Descriptor) => ({ open: (o = 0) => createReadStream(join(layout.dir, "blobs", "sha256", digestHex(d.digest)), { start: o }) });

    beforeAll(async () => {
      work = await mkdtemp(join(tmpdir(), "ferry-token-"));
      layout = await buildImage({ dir: join(work, "l"), layers: 1, layerSize: 2 * 1024 * 1024, name: "t" });
    });
    afterAll(async () => {
      if (work) await rm(work, { recursive: true, force: true });
    });

    it("pushes with the default authorizer, then lists the catalog with the scope the challenge names", async () => {
      const r = createRegistryResolver({ credentials: credentials(), retry: { minDelayMs: 5 } });
      try {
        const p = await r.pusher(`${ctx.server.host}/tok/one`);
        const img = layout.images[0]!;
        for (const d of [...img.layers, img.config]) expect(await p.push(d, src(d))).toBe("pushed");
        expect(await p.push(img.manifest, src(img.manifest), { tag: "v1" })).toBe("pushed");
        ctx.server.clearTokenLog();
        const repos: string[] = [];
        for await (const repo of r.catalog(ctx.server.host)) repos.push(repo);
        expect(repos).toContain("tok/one");
        expect(ctx.server.tokenScopes()).toContain("registry:catalog:*");
        expect((await r.resolve(`${ctx.server.host}/tok/one:v1`)).descriptor.digest).toBe(img.manifest.digest);
      } finally {
        await r.close();
      }
    });

    it("anonymous access is Unauthorized, with no credentials in the error", async () => {
      const r = createRegistryResolver({ credentials: {}, retry: { maxAttempts: 1 } });
      try {
        const err = (await r.resolve(`${ctx.server.host}/tok/one:v1`).catch((e: unknown) => e)) as Error & { details: unknown };
        expect(err).toMatchObject({ code: "Unauthorized" });
        expect(`${err.message} ${JSON.stringify(err.details)}`).not.toMatch(/s3cret|Bearer ey/);
      } finally {
        await r.close();
      }
    });
  },
  { auth: { token: { users: { ci: "s3cret" } } } },
);
