import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { afterEach, describe, expect, it } from "vitest";
import { MediaTypes, digestHex, type Descriptor } from "@ferry/core";
import { buildImage, requireTools, runTool, tarHeader, tarSize } from "../src/index.ts";

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "ferry-testkit-build-"));
  dirs.push(d);
  return d;
}
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

const sha = (b: Uint8Array): string => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const blob = (dir: string, d: Descriptor): Promise<Buffer> => readFile(join(dir, "blobs", "sha256", digestHex(d.digest)));

describe("tar", () => {
  it("writes a header tar(1) accepts with a valid checksum", async () => {
    const h = tarHeader("data/x.bin", 1234);
    expect(h.length).toBe(512);
    expect(h.subarray(257, 263).toString("binary")).toBe("ustar\u0000");
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
    expect(parseInt(h.subarray(148, 154).toString("ascii"), 8)).toBe(sum);
    expect(parseInt(h.subarray(124, 135).toString("ascii"), 8)).toBe(1234);
    expect(tarSize(1234)).toBe(512 + 1536 + 1024);
  });

  it("uses base-256 for sizes of 8 GiB and more", () => {
    const h = tarHeader("big", 2 ** 33 + 5);
    expect(h[124]).toBe(0x80);
    expect(h.readUIntBE(130, 6)).toBe(2 ** 33 + 5);
  });
});

describe("buildImage", () => {
  it("writes a valid single-platform OCI layout with correct digests and diff_ids", async () => {
    const dir = join(await tempDir(), "layout");
    const built = await buildImage({ dir, layers: 2, layerSize: 100_000, name: "v1" });
    expect(built.root.mediaType).toBe(MediaTypes.OciManifest);
    expect(built.root.platform).toBeUndefined();
    expect(built.layers).toHaveLength(2);

    const index = JSON.parse(await readFile(join(dir, "index.json"), "utf8"));
    expect(index.manifests).toEqual([built.root]);
    expect(built.root.annotations).toEqual({ "org.opencontainers.image.ref.name": "v1" });
    expect(JSON.parse(await readFile(join(dir, "oci-layout"), "utf8"))).toEqual({ imageLayoutVersion: "1.0.0" });

    const manifestBytes = await blob(dir, built.root);
    expect(sha(manifestBytes)).toBe(built.root.digest);
    expect(manifestBytes.length).toBe(built.root.size);
    const manifest = JSON.parse(manifestBytes.toString());
    expect(manifest.config).toEqual(built.configs[0]);
    expect(manifest.layers).toEqual(built.layers);

    const config = JSON.parse((await blob(dir, built.configs[0]!)).toString());
    expect(config.rootfs.type).toBe("layers");
    for (const [i, layer] of built.layers.entries()) {
      expect(layer.mediaType).toBe(MediaTypes.OciLayerGzip);
      const gz = await blob(dir, layer);
      expect(sha(gz)).toBe(layer.digest);
      expect(gz.length).toBe(layer.size);
      const tar = gunzipSync(gz);
      expect(sha(tar)).toBe(config.rootfs.diff_ids[i]);
      expect(tar.length).toBe(tarSize(100_000));
    }
    // Incompressible: gzip adds a little instead of shrinking it.
    expect(built.layers[0]!.size).toBeGreaterThan(100_000);
    // No leftovers from the streaming writes.
    const names = await import("node:fs/promises").then((fs) => fs.readdir(join(dir, "blobs", "sha256")));
    expect(names.filter((n) => n.startsWith("."))).toEqual([]);
    expect(names).toHaveLength(4);
  });

  it("is reproducible with a seed and random without one", async () => {
    const base = await tempDir();
    const a = await buildImage({ dir: join(base, "a"), layers: 1, layerSize: 5000, seed: 7 });
    const b = await buildImage({ dir: join(base, "b"), layers: 1, layerSize: 5000, seed: 7 });
    const c = await buildImage({ dir: join(base, "c"), layers: 1, layerSize: 5000, seed: 8 });
    const d = await buildImage({ dir: join(base, "d"), layers: 1, layerSize: 5000 });
    expect(b.root.digest).toBe(a.root.digest);
    expect(c.root.digest).not.toBe(a.root.digest);
    expect(d.layers[0]!.digest).not.toBe(a.layers[0]!.digest);
  });

  it("builds an index of per-platform manifests with distinct layers", async () => {
    const dir = join(await tempDir(), "layout");
    const built = await buildImage({ dir, layers: 1, layerSize: 2048, platforms: ["linux/amd64", "linux/arm64/v8"] });
    expect(built.root.mediaType).toBe(MediaTypes.OciIndex);
    const index = JSON.parse((await blob(dir, built.root)).toString());
    expect(index.manifests).toEqual(built.manifests);
    expect(index.manifests.map((m: Descriptor) => m.platform)).toEqual([
      { os: "linux", architecture: "amd64" },
      { os: "linux", architecture: "arm64", variant: "v8" },
    ]);
    expect(new Set(built.layers.map((l) => l.digest)).size).toBe(2);
    const arm = JSON.parse((await blob(dir, built.configs[1]!)).toString());
    expect(arm).toMatchObject({ os: "linux", architecture: "arm64", variant: "v8" });
  });

  it("builds docker media types and uncompressed layers", async () => {
    const dir = join(await tempDir(), "layout");
    const built = await buildImage({ dir, layers: 1, layerSize: 1000, format: "docker", compression: "none", index: true });
    expect(built.root.mediaType).toBe(MediaTypes.DockerManifestList);
    expect(built.manifests[0]!.mediaType).toBe(MediaTypes.DockerManifest);
    expect(built.configs[0]!.mediaType).toBe(MediaTypes.DockerConfig);
    expect(built.layers[0]!.mediaType).toBe("application/vnd.docker.image.rootfs.diff.tar");
    const config = JSON.parse((await blob(dir, built.configs[0]!)).toString());
    expect(config.rootfs.diff_ids[0]).toBe(built.layers[0]!.digest);
    expect(built.images[0]!.diffIds[0]).toBe(built.layers[0]!.digest);
  });

  it("refuses a non-empty dir and bad arguments", async () => {
    const dir = await tempDir();
    await buildImage({ dir: join(dir, "x"), layers: 1, layerSize: 1 });
    await expect(buildImage({ dir: join(dir, "x"), layers: 1, layerSize: 1 })).rejects.toMatchObject({ code: "InvalidArgument" });
    await expect(buildImage({ dir: join(dir, "y"), layers: 0, layerSize: 1 })).rejects.toMatchObject({ code: "InvalidArgument" });
    await expect(buildImage({ dir: join(dir, "z"), layers: 1, layerSize: 1, platforms: ["linux"] })).rejects.toMatchObject({
      code: "InvalidArgument",
    });
  });

  it("stops on abort", async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(buildImage({ dir: join(await tempDir(), "l"), layers: 2, layerSize: 1 << 20, signal: ac.signal })).rejects.toMatchObject({
      code: "Aborted",
    });
  });

  it("stops mid-build on abort with an Aborted error and leaves no temp files", async () => {
    const ac = new AbortController();
    const dir = join(await tempDir(), "l");
    const p = buildImage({ dir, layers: 4, layerSize: 32 << 20, gzipLevel: 1, concurrency: 1, signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    await expect(p).rejects.toMatchObject({ code: "Aborted" });
    const left = await import("node:fs/promises").then((fs) => fs.readdir(join(dir, "blobs", "sha256")));
    expect(left.filter((n) => n.startsWith(".tmp-"))).toEqual([]);
  });

  it.runIf(requireTools("umoci"))("unpacks with umoci into the expected file", async () => {
    const base = await tempDir();
    const built = await buildImage({ dir: join(base, "layout"), layers: 2, layerSize: 3000, name: "t" });
    await runTool("umoci", ["unpack", "--rootless", "--image", `${join(base, "layout")}:t`, join(base, "bundle")]);
    const st = await stat(join(base, "bundle", "rootfs", "data", "layer-0-2.bin"));
    expect(st.size).toBe(3000);
    expect(built.layers).toHaveLength(2);
  });
});
