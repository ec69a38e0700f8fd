import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { MediaTypes, ManifestAcceptTypes, hasCode } from "@ferry/core";
import { buildImage, describeWithRegistry, makeImage, pushImage, skopeo } from "../src/index.ts";

function getRaw(url: string, accept = ManifestAcceptTypes.join(", ")): Promise<{ status: number; type: string; digest: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { accept } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          type: String(res.headers["content-type"]),
          digest: String(res.headers["docker-content-digest"]),
          body: Buffer.concat(chunks),
        }),
      );
    });
    req.on("error", reject);
    req.end();
  });
}
const sha = (b: Uint8Array): string => `sha256:${createHash("sha256").update(b).digest("hex")}`;

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "ferry-testkit-push-"));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describeWithRegistry(
  "pushImage with skopeo",
  (ctx) => {
    it("pushes an OCI image with its digests preserved", async () => {
      const dir = join(work, "oci");
      const built = await buildImage({ dir, layers: 2, layerSize: 50_000, name: "one" });
      const digest = await pushImage(dir, "one", ctx.registry.host, "demo/app:1");
      expect(digest).toBe(built.root.digest);
      const m = await getRaw(`${ctx.registry.url}/v2/demo/app/manifests/1`);
      expect(m.status).toBe(200);
      expect(m.digest).toBe(built.root.digest);
      expect(m.type).toBe(MediaTypes.OciManifest);
      expect(sha(m.body)).toBe(built.root.digest);
      for (const layer of built.layers) {
        const b = await getRaw(`${ctx.registry.url}/v2/demo/app/blobs/${layer.digest}`, "*/*");
        expect(b.status).toBe(200);
        expect(sha(b.body)).toBe(layer.digest);
      }
    });

    it("pushes an OCI index with --all", async () => {
      const made = await makeImage(ctx.registry.host, "multi:latest", { layers: 1, layerSize: 4096, platforms: ["linux/amd64", "linux/arm64"] });
      expect(made.kept).toBe(false);
      expect(made.reference).toBe(`${ctx.registry.host}/multi:latest`);
      const idx = await getRaw(`${ctx.registry.url}/v2/multi/manifests/latest`);
      expect(idx.digest).toBe(made.root.digest);
      expect(idx.type).toBe(MediaTypes.OciIndex);
      for (const m of made.manifests) {
        const r = await getRaw(`${ctx.registry.url}/v2/multi/manifests/${m.digest}`);
        expect(r.status).toBe(200);
      }
    });

    it("pushes Docker schema 2 images and manifest lists through dir:", async () => {
      const single = await makeImage(ctx.registry.host, "dock:single", { layers: 2, layerSize: 3000, format: "docker" });
      const r1 = await getRaw(`${ctx.registry.url}/v2/dock/manifests/single`);
      expect(r1.type).toBe(MediaTypes.DockerManifest);
      expect(r1.digest).toBe(single.digest);

      const list = await makeImage(ctx.registry.host, "dock:list", {
        layers: 1,
        layerSize: 3000,
        format: "docker",
        platforms: ["linux/amd64", "linux/arm/v7"],
      });
      const r2 = await getRaw(`${ctx.registry.url}/v2/dock/manifests/list`);
      expect(r2.type).toBe(MediaTypes.DockerManifestList);
      expect(r2.digest).toBe(list.root.digest);
      const child = await getRaw(`${ctx.registry.url}/v2/dock/manifests/${list.manifests[1]!.digest}`);
      expect(child.status).toBe(200);
      expect(child.type).toBe(MediaTypes.DockerManifest);
    });

    it("keeps the layout when asked, and skopeo inspects the same digest", async () => {
      const layoutDir = join(work, "kept");
      const made = await makeImage(ctx.registry.host, "kept:1", { layers: 1, layerSize: 10, layoutDir, seed: "k" });
      expect(made.kept).toBe(true);
      expect(JSON.parse(await readFile(join(layoutDir, "index.json"), "utf8")).manifests[0].digest).toBe(made.digest);
      const out = JSON.parse(await skopeo(["inspect", "--tls-verify=false", `docker://${made.reference}`]));
      expect(out.Digest).toBe(made.digest);
    });

    it("skopeo failures are typed errors with stderr", async () => {
      const err = await skopeo(["inspect", "--tls-verify=false", `docker://${ctx.registry.host}/nope:missing`]).catch((e: unknown) => e);
      expect(hasCode(err, "Internal")).toBe(true);
      expect((err as { stderr: string }).stderr).toMatch(/manifest unknown|not found/i);
      await expect(pushImage(join(work, "oci"), "absent", ctx.registry.host, "x:1")).rejects.toMatchObject({ code: "NotFound" });
    });
  },
  { tools: ["skopeo"] },
);
