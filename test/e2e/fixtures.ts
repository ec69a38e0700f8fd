/** Small synthetic images written straight into a content store, for orchestration tests. */
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import {
  type ContentStore,
  type Descriptor,
  type Platform,
  type StatusEvent,
  MediaTypes,
  digestOf,
  ingestRef,
  writeBlob,
} from "./deps.ts";

export interface SyntheticImage {
  root: Descriptor;
  manifests: Descriptor[];
  configs: Descriptor[];
  layers: Descriptor[];
  /** Every descriptor in the graph, deduplicated. */
  all: Descriptor[];
  /** Bytes of every blob, by digest. */
  bytes: Map<string, Uint8Array>;
}

export interface SyntheticImageOptions {
  platforms?: Platform[];
  layers?: number;
  layerSize?: number;
  /** A layer shared by every platform manifest (dedupe). */
  sharedLayer?: boolean;
  /** Record the root under this name. */
  name?: string;
}

export async function put(store: ContentStore, mediaType: string, data: Uint8Array, extra: Partial<Descriptor> = {}): Promise<Descriptor> {
  const desc: Descriptor = { mediaType, digest: digestOf(data), size: data.byteLength, ...extra };
  await writeBlob(store, ingestRef(desc), Readable.from([Buffer.from(data)]), desc);
  return desc;
}

/** An index of platform manifests (or a single manifest when one platform is given and `index: false`). */
export async function syntheticImage(store: ContentStore, options: SyntheticImageOptions = {}): Promise<SyntheticImage> {
  const platforms = options.platforms ?? [
    { os: "linux", architecture: "amd64" },
    { os: "linux", architecture: "arm64", variant: "v8" },
  ];
  const layerCount = options.layers ?? 2;
  const layerSize = options.layerSize ?? 64 * 1024;
  const bytes = new Map<string, Uint8Array>();
  const out: SyntheticImage = { root: undefined as unknown as Descriptor, manifests: [], configs: [], layers: [], all: [], bytes };
  const add = async (mediaType: string, data: Uint8Array, extra: Partial<Descriptor> = {}): Promise<Descriptor> => {
    const d = await put(store, mediaType, data, extra);
    if (!bytes.has(d.digest)) out.all.push({ mediaType: d.mediaType, digest: d.digest, size: d.size });
    bytes.set(d.digest, data);
    return d;
  };
  const shared = options.sharedLayer ? await add(MediaTypes.OciLayerGzip, randomBytes(layerSize)) : undefined;
  if (shared) out.layers.push(shared);
  const manifests: Descriptor[] = [];
  for (const platform of platforms) {
    const layers: Descriptor[] = shared ? [shared] : [];
    for (let i = 0; i < layerCount; i++) {
      const l = await add(MediaTypes.OciLayerGzip, randomBytes(layerSize));
      layers.push(l);
      out.layers.push(l);
    }
    const config = await add(
      MediaTypes.OciConfig,
      Buffer.from(JSON.stringify({ architecture: platform.architecture, os: platform.os, rootfs: { type: "layers", diff_ids: layers.map((l) => l.digest) } })),
    );
    out.configs.push(config);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaTypes.OciManifest,
        config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
        layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
      }),
    );
    const m = await add(MediaTypes.OciManifest, manifest);
    out.manifests.push(m);
    manifests.push({ ...m, platform });
  }
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.OciIndex, manifests }));
  out.root = await add(MediaTypes.OciIndex, index);
  if (options.name) await store.setName(options.name, out.root);
  return out;
}

/** Digests a store holds, among `descs`. */
export async function present(store: ContentStore, descs: Descriptor[]): Promise<Set<string>> {
  const have = new Set<string>();
  for (const d of descs) {
    try {
      await store.info(d.digest);
      have.add(d.digest);
    } catch {
      // absent
    }
  }
  return have;
}

/** Every event of an operation's stream (subscribed now), resolved when the stream ends either way. */
export function collect(op: { status$: { subscribe(o: { next(e: StatusEvent): void; error(e: unknown): void; complete(): void }): unknown } }): Promise<StatusEvent[]> {
  const out: StatusEvent[] = [];
  return new Promise((resolve) => {
    op.status$.subscribe({ next: (e) => out.push(e), error: () => resolve(out), complete: () => resolve(out) });
  });
}
