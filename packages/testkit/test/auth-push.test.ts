import { expect, it } from "vitest";
import { describeWithRegistry, makeImage, skopeo } from "../src/index.ts";

describeWithRegistry(
  "pushing with credentials (htpasswd)",
  (ctx) => {
    it("refuses anonymous pushes and accepts creds", async () => {
      await expect(makeImage(ctx.registry.host, "secure/app:1", { layers: 1, layerSize: 100 })).rejects.toMatchObject({ code: "Internal" });
      const made = await makeImage(ctx.registry.host, "secure/app:1", { layers: 1, layerSize: 100, creds: { username: "u", password: "p w" } });
      const out = JSON.parse(await skopeo(["inspect", "--tls-verify=false", "--creds", "u:p w", `docker://${made.reference}`]));
      expect(out.Digest).toBe(made.digest);
    });
  },
  { tools: ["skopeo", "htpasswd"], auth: { htpasswd: { username: "u", password: "p w" } } },
);

describeWithRegistry(
  "pushing with credentials (token server)",
  (ctx) => {
    it("skopeo gets tokens from the token server and pushes", async () => {
      const before = ctx.tokens.issued;
      const made = await makeImage(ctx.registry.host, "tok/app:1", { layers: 2, layerSize: 1000, creds: { username: "ci", password: "secret" } });
      expect(made.digest).toBe(made.root.digest);
      expect(ctx.tokens.issued).toBeGreaterThan(before);
      const scopes = ctx.tokens.log.flatMap((l) => l.scopes);
      expect(scopes.some((s) => s.startsWith("repository:tok/app:") && s.includes("push"))).toBe(true);
      const anon = await fetch(`${ctx.registry.url}/v2/tok/app/manifests/1`);
      expect(anon.status).toBe(401);
    });
  },
  { tools: ["skopeo"], tokenAuth: { users: { ci: "secret" } } },
);
