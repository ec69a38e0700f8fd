/**
 * The benchmark's test images, built once per run with random (incompressible) content:
 *  - `multi`: 8 gzip layers (stored deflate blocks: valid gzip, random bytes do not compress);
 *  - `single`: one gzip layer;
 *  - `small`: an index → manifest → N small uncompressed layers of 4–64 KiB each.
 * Each is an OCI layout on disk (the push source) and is pushed to the registries with skopeo.
 */
import { createHash, randomBytes, randomInt } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Descriptor, Digest } from "../../packages/core/src/index.ts";
import { MediaTypes } from "../../packages/core/src/index.ts";
import { buildImage } from "../../packages/testkit/src/index.ts";

export interface BenchImage {
  /** OCI layout directory holding the image under `name`. */
  dir: string;
  name: string;
  root: Descriptor;
  /** Bytes of every blob a pull moves (manifests, config, layers). */
  bytes: number;
  /** Blobs a pull moves (manifests and config included). */
  blobs: number;
  /** The largest layer (for the `curl` of one blob). */
  biggest: Descriptor;
  /** Every blob a pull moves. */
  descriptors: Descriptor[];
}

const MiB = 1024 * 1024;

export async function buildLayered(dir: string, layers: number, layerMiB: number): Promise<BenchImage> {
  const built = await buildImage({ dir, layers, layerSize: layerMiB * MiB, gzipLevel: 0, name: "bench" });
  const img = built.images[0]!;
  const all = [img.manifest, img.config, ...img.layers];
  const biggest = [...img.layers].sort((a, b) => b.size - a.size)[0]!;
  return { dir, name: "bench", root: built.root, bytes: all.reduce((n, d) => n + d.size, 0), blobs: all.length, biggest, descriptors: all };
}

async function putBlob(dir: string, bytes: Uint8Array): Promise<Digest> {
  const hex = createHash("sha256").update(bytes).digest("hex");
  await writeFile(join(dir, "blobs", "sha256", hex), bytes);
  return `sha256:${hex}` as Digest;
}

/** An index over one linux/amd64 image of `count` random layers of 4–64 KiB. */
export async function buildSmallBlobs(dir: string, count: number): Promise<BenchImage> {
  await mkdir(join(dir, "blobs", "sha256"), { recursive: true });
  await writeFile(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  const layers: Descriptor[] = [];
  for (let i = 0; i < count; i++) {
    const data = randomBytes(randomInt(4 * 1024, 64 * 1024 + 1));
    layers.push({ mediaType: MediaTypes.OciLayer, digest: await putBlob(dir, data), size: data.byteLength });
  }
  const config = Buffer.from(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      rootfs: { type: "layers", diff_ids: layers.map((l) => l.digest) },
      config: {},
    }),
  );
  const configDesc: Descriptor = { mediaType: MediaTypes.OciConfig, digest: await putBlob(dir, config), size: config.byteLength };
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.OciManifest, config: configDesc, layers }));
  const manifestDesc: Descriptor = {
    mediaType: MediaTypes.OciManifest,
    digest: await putBlob(dir, manifest),
    size: manifest.byteLength,
    platform: { architecture: "amd64", os: "linux" },
  };
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.OciIndex, manifests: [manifestDesc] }));
  const root: Descriptor = { mediaType: MediaTypes.OciIndex, digest: await putBlob(dir, index), size: index.byteLength };
  await writeFile(
    join(dir, "index.json"),
    JSON.stringify({ schemaVersion: 2, manifests: [{ ...root, annotations: { "org.opencontainers.image.ref.name": "bench" } }] }),
  );
  const all = [root, manifestDesc, configDesc, ...layers];
  const biggest = [...layers].sort((a, b) => b.size - a.size)[0]!;
  return { dir, name: "bench", root, bytes: all.reduce((n, d) => n + d.size, 0), blobs: all.length, biggest, descriptors: all };
}
