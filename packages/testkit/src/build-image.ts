/**
 * Builds random test images as an OCI image layout on disk: each layer a real tar with one file
 * of incompressible bytes, gzipped (level 1) or not, streamed straight to the blob file; configs
 * with correct `rootfs.diff_ids`; a manifest per platform; an index when there are several.
 */
import { createHash, randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, readdir, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import {
  AnnotationRefName,
  InvalidArgumentError,
  abortError,
  MediaTypes,
  digestHex,
  digestOf,
  parseDigest,
  throwIfAborted,
  type Descriptor,
  type Digest,
  type Platform,
} from "@ferry/core";
import { randomStream } from "./random-bytes.ts";
import { tarOneFile } from "./tar.ts";

export type ImageFormat = "oci" | "docker";
export type LayerCompression = "gzip" | "none";

export interface BuildImageOptions {
  /** Directory of the OCI layout to write; created if missing, must be empty if it exists. */
  dir: string;
  /** Layers per platform image (>= 1). */
  layers: number;
  /** Random payload bytes per layer (the tar adds 1.5 KiB or so). 0 is allowed. */
  layerSize: number;
  /**
   * Platforms as `os/arch[/variant]`. Default `["linux/amd64"]`. More than one builds an index;
   * each platform gets its own layers.
   */
  platforms?: string[];
  /** Build an index even for a single platform. Default: only when platforms > 1. */
  index?: boolean;
  /** OCI media types, or Docker schema 2 / manifest list. Default `"oci"`. */
  format?: ImageFormat;
  /** Layer compression; gzip uses zlib level 1. Default `"gzip"`. */
  compression?: LayerCompression;
  /**
   * Makes the image reproducible: the same seed, sizes and platforms give the same digests.
   * Default: random content each build.
   */
  seed?: string | number;
  /** Tag recorded in `index.json` as `org.opencontainers.image.ref.name`. Default `"latest"`. */
  name?: string;
  /**
   * zlib level for gzip layers. Default 1. Random data does not compress, so 0 (stored deflate
   * blocks, still a valid gzip stream) gives the same size about 25x faster: use it for big images.
   */
  gzipLevel?: number;
  /** Layers built at once (zlib runs on the libuv pool). Default 2. */
  concurrency?: number;
  /** Extra config labels. */
  labels?: Record<string, string>;
  signal?: AbortSignal;
}

/** One platform's image inside the built layout. */
export interface BuiltImage {
  manifest: Descriptor;
  config: Descriptor;
  layers: Descriptor[];
  /** sha256 of each uncompressed layer tar, as in the config's `rootfs.diff_ids`. */
  diffIds: Digest[];
  platform: Platform;
}

export interface BuiltLayout {
  /** The layout's root directory. */
  dir: string;
  /** The `ref.name` of the root in `index.json`. */
  name: string;
  /** What `index.json` points at: the index when there is one, else the single manifest. */
  root: Descriptor;
  format: ImageFormat;
  /** Image manifests, one per platform, in platform order (with `platform` set). */
  manifests: Descriptor[];
  configs: Descriptor[];
  /** Every layer of every platform, in platform then layer order. */
  layers: Descriptor[];
  images: BuiltImage[];
}

// Fixed so that seeded builds are byte-for-byte reproducible.
const CREATED = "2024-01-01T00:00:00Z";

function mediaTypes(format: ImageFormat, compression: LayerCompression) {
  if (format === "docker") {
    return {
      manifest: MediaTypes.DockerManifest,
      index: MediaTypes.DockerManifestList,
      config: MediaTypes.DockerConfig,
      // Docker's uncompressed layer type shares the name minus ".gzip".
      layer: compression === "gzip" ? MediaTypes.DockerLayerGzip : "application/vnd.docker.image.rootfs.diff.tar",
    };
  }
  return {
    manifest: MediaTypes.OciManifest,
    index: MediaTypes.OciIndex,
    config: MediaTypes.OciConfig,
    layer: compression === "gzip" ? MediaTypes.OciLayerGzip : MediaTypes.OciLayer,
  };
}

/** Parse `os/arch[/variant]`. */
export function parsePlatform(spec: string): Platform {
  const [os, architecture, variant, ...rest] = spec.split("/");
  if (!os || !architecture || rest.length > 0 || variant === "") {
    throw new InvalidArgumentError(`bad platform ${JSON.stringify(spec)}: want os/arch[/variant]`);
  }
  return variant === undefined ? { architecture, os } : { architecture, os, variant };
}

/** Write a random image (or multi-platform index) as an OCI layout at `options.dir`. */
export async function buildImage(options: BuildImageOptions): Promise<BuiltLayout> {
  const { dir, layers, layerSize, format = "oci", compression = "gzip", name = "latest", signal } = options;
  if (!Number.isInteger(layers) || layers < 1) throw new InvalidArgumentError(`layers must be an integer >= 1, got ${layers}`);
  if (!Number.isSafeInteger(layerSize) || layerSize < 0) throw new InvalidArgumentError(`layerSize must be a byte count, got ${layerSize}`);
  const platforms = (options.platforms ?? ["linux/amd64"]).map(parsePlatform);
  if (platforms.length === 0) throw new InvalidArgumentError("platforms must not be empty");
  const concurrency = Math.max(1, options.concurrency ?? 2);
  const gzipLevel = options.gzipLevel ?? 1;
  if (!Number.isInteger(gzipLevel) || gzipLevel < 0 || gzipLevel > 9) throw new InvalidArgumentError(`gzipLevel must be 0..9, got ${gzipLevel}`);
  const mt = mediaTypes(format, compression);

  await mkdir(dir, { recursive: true });
  if ((await readdir(dir)).length > 0) throw new InvalidArgumentError(`layout dir ${dir} is not empty`);
  const blobs = join(dir, "blobs", "sha256");
  await mkdir(blobs, { recursive: true });
  await writeFile(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));

  const writeJsonBlob = async (mediaType: string, doc: unknown, extra: Partial<Descriptor> = {}): Promise<Descriptor> => {
    const bytes = Buffer.from(JSON.stringify(doc));
    const digest = digestOf(bytes);
    await writeFile(join(blobs, digestHex(digest)), bytes);
    return { mediaType, digest, size: bytes.byteLength, ...extra };
  };

  // Every layer job, across platforms, so the pool stays busy across platform boundaries.
  const jobs = platforms.flatMap((_, p) => Array.from({ length: layers }, (_, n) => ({ p, n })));
  const results = new Map<string, { desc: Descriptor; diffId: Digest }>();
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (next < jobs.length && !failed) {
      const job = jobs[next++]!;
      throwIfAborted(signal);
      const label = `layer/${job.p}/${job.n + 1}`;
      const built = await writeLayer(blobs, {
        path: `data/layer-${job.p}-${job.n + 1}.bin`,
        content: randomStream(layerSize, options.seed, label),
        size: layerSize,
        compression,
        gzipLevel,
        mediaType: mt.layer,
        signal,
      });
      results.set(label, built);
    }
  };
  const guarded = (): Promise<void> =>
    worker().catch((e: unknown) => {
      failed = true; // stop the other workers from starting new layers
      throw e;
    });
  await Promise.all(Array.from({ length: Math.min(concurrency, jobs.length) }, guarded));

  const images: BuiltImage[] = [];
  for (const [p, platform] of platforms.entries()) {
    const ls = Array.from({ length: layers }, (_, n) => results.get(`layer/${p}/${n + 1}`)!);
    const diffIds = ls.map((l) => l.diffId);
    const config = await writeJsonBlob(mt.config, {
      created: CREATED,
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      config: {
        Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        Labels: { "test.layers": String(layers), "test.layer-bytes": String(layerSize), ...options.labels },
      },
      rootfs: { type: "layers", diff_ids: diffIds },
      history: diffIds.map((_, i) => ({ created: CREATED, created_by: `ferry testkit random layer ${i + 1}` })),
    });
    const layerDescs = ls.map((l) => l.desc);
    const manifest = await writeJsonBlob(
      mt.manifest,
      { schemaVersion: 2, mediaType: mt.manifest, config, layers: layerDescs },
      { platform },
    );
    images.push({ manifest, config, layers: layerDescs, diffIds, platform });
  }

  let root: Descriptor;
  if (platforms.length > 1 || options.index) {
    root = await writeJsonBlob(mt.index, { schemaVersion: 2, mediaType: mt.index, manifests: images.map((i) => i.manifest) });
  } else {
    const { platform: _omit, ...m } = images[0]!.manifest;
    root = m;
  }
  root = { ...root, annotations: { [AnnotationRefName]: name } };
  await writeFile(
    join(dir, "index.json"),
    JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.OciIndex, manifests: [root] }),
  );
  return {
    dir,
    name,
    root,
    format,
    manifests: images.map((i) => i.manifest),
    configs: images.map((i) => i.config),
    layers: images.flatMap((i) => i.layers),
    images,
  };
}

interface LayerJob {
  path: string;
  content: AsyncIterable<Uint8Array>;
  size: number;
  compression: LayerCompression;
  gzipLevel: number;
  mediaType: string;
  signal?: AbortSignal | undefined;
}

/** Stream tar → (diff_id hash) → gzip → (digest hash) → temp file, then rename into place. */
async function writeLayer(blobs: string, job: LayerJob): Promise<{ desc: Descriptor; diffId: Digest }> {
  const tmp = join(blobs, `.tmp-${randomBytes(8).toString("hex")}`);
  const diff = createHash("sha256");
  const blob = createHash("sha256");
  let size = 0;
  const tapDiff = async function* (src: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    for await (const c of src) {
      diff.update(c);
      yield c;
    }
  };
  const tapBlob = async function* (src: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    for await (const c of src) {
      blob.update(c);
      size += c.byteLength;
      yield c;
    }
  };
  const opts = job.signal ? { signal: job.signal } : {};
  try {
    const tar = tarOneFile(job.path, job.size, job.content);
    const out = createWriteStream(tmp);
    if (job.compression === "gzip") {
      const gz = createGzip({ level: job.gzipLevel, chunkSize: 1 << 20 });
      await pipeline(tar, tapDiff, gz, tapBlob, out, opts);
    } else {
      await pipeline(tar, tapDiff, tapBlob, out, opts);
    }
    const diffId = parseDigest(`sha256:${diff.digest("hex")}`);
    const digest = parseDigest(`sha256:${blob.digest("hex")}`);
    await rename(tmp, join(blobs, digestHex(digest)));
    return { desc: { mediaType: job.mediaType, digest, size }, diffId };
  } catch (e) {
    await rm(tmp, { force: true });
    if (job.signal?.aborted) throw abortError(job.signal);
    throw e;
  }
}
