/** skopeo copy to and from this registry: digests survive the round trip. */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openFsStore } from "@ferry/store-fs";
import { buildImage, pushImage, requireTools, skopeo } from "@ferry/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FsRegistryStorage } from "../src/index.ts";
import { startRegistry, type Running } from "./helpers.ts";

const run = requireTools("skopeo");

describe.skipIf(!run)("skopeo interop", () => {
  let dir: string;
  let r: Running;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-reg-skopeo-"));
    const store = await openFsStore(join(dir, "store"));
    r = await startRegistry({ store, storage: new FsRegistryStorage(join(dir, "meta")) });
  });
  afterAll(async () => {
    await r?.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function roundTrip(format: "oci" | "docker", platforms: string[], repo: string): Promise<void> {
    const slug = repo.replaceAll("/", "-");
    const layout = await buildImage({ dir: join(dir, `src-${slug}`), layers: 2, layerSize: 256 * 1024, platforms, format });
    const pushed = await pushImage(layout.dir, layout.name, r.server.host, `${repo}:v1`);
    expect(pushed).toBe(layout.root.digest);

    const inspect = JSON.parse(await skopeo(["inspect", "--raw", "--tls-verify=false", `docker://${r.server.host}/${repo}:v1`])) as {
      mediaType?: string;
    };
    expect(inspect.mediaType).toBe(layout.root.mediaType);

    // Pull it back into an OCI layout (docker format through dir:, which keeps Docker media types).
    const out = join(dir, `out-${slug}`);
    const digestFile = join(dir, `digest-${slug}`);
    const dest = format === "docker" ? `dir:${out}` : `oci:${out}:v1`;
    const all = platforms.length > 1 ? ["--all"] : [];
    await skopeo(["copy", "-q", "--preserve-digests", "--src-tls-verify=false", ...all, "--digestfile", digestFile, `docker://${r.server.host}/${repo}:v1`, dest]);
    expect((await readFile(digestFile, "utf8")).trim()).toBe(layout.root.digest);
    for (const layer of layout.layers) {
      const res = await fetch(`${r.url}/v2/${repo}/blobs/${layer.digest}`, { method: "HEAD" });
      expect(res.status).toBe(200);
      expect(Number(res.headers.get("content-length"))).toBe(layer.size);
    }
  }

  it("pushes and pulls a single-platform OCI image", async () => {
    await roundTrip("oci", ["linux/amd64"], "skopeo/oci");
  });

  it("pushes and pulls a two-platform OCI index with --all", async () => {
    await roundTrip("oci", ["linux/amd64", "linux/arm64"], "skopeo/index");
  });

  it("pushes and pulls a Docker schema 2 image", async () => {
    await roundTrip("docker", ["linux/amd64"], "skopeo/docker");
  });
});
