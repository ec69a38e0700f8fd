/** Small synthetic images written straight into a content store, for orchestration tests. */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll } from "vitest";
import {
  type ContentStore,
  type Descriptor,
  type FetchOptions,
  type FetchStream,
  LocalFetcher,
  LocalResolver,
  type Resolver,
  type Platform,
  type StatusEvent,
  MediaTypes,
  digestOf,
  ingestRef,
  writeBlob,
} from "./deps.ts";

/**
 * Temp directories for the tests of one file: the returned function makes a fresh one named
 * `<prefix>…`; all of them are removed after the file's tests.
 */
export function tempDirs(prefix: string): () => Promise<string> {
  const dirs: string[] = [];
  afterAll(async () => {
    await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
  });
  return async () => {
    const d = await mkdtemp(join(tmpdir(), prefix));
    dirs.push(d);
    return d;
  };
}

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

/** An artifact manifest (empty config, one text layer) whose `subject` is `subject`, e.g. an SBOM. */
export async function artifact(store: ContentStore, subject: Descriptor, artifactType: string, text: string): Promise<Descriptor> {
  const blob = await put(store, "text/plain", Buffer.from(text));
  const empty = await put(store, MediaTypes.OciEmpty, Buffer.from("{}"));
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaTypes.OciManifest,
    artifactType,
    config: { mediaType: empty.mediaType, digest: empty.digest, size: empty.size },
    layers: [{ mediaType: blob.mediaType, digest: blob.digest, size: blob.size }],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
  };
  const d = await put(store, MediaTypes.OciManifest, Buffer.from(JSON.stringify(manifest)));
  return { ...d, artifactType };
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

export interface FaultPlan {
  /** Fail the fetch of these digests with `error` once `after` bytes of this fetch went out. */
  fail?: Map<string, { after: number; error: Error; when?: Promise<void> }>;
  /** Deliver only `after` bytes of these digests, then hang until the fetch is aborted. */
  stall?: Map<string, number>;
  /** Re-chunk every stream into pieces of this size, so progress is observable. Default 16 KiB. */
  chunk?: number;
  /** Wait this long before each chunk. Default 0. */
  delayMs?: number;
  /** Every fetch made: digest and offset. */
  calls?: Array<{ digest: string; offset: number }>;
  /** Pretend Range is unsupported: always start from 0 and flag `rangeIgnored`. */
  ignoreRange?: boolean;
}

/** A resolver over a store whose fetches misbehave as planned. */
export function faultyResolver(store: ContentStore, plan: FaultPlan): Resolver {
  const inner = new LocalResolver(store);
  const fetcher = new LocalFetcher(store);
  const chunk = plan.chunk ?? 16 * 1024;
  return {
    resolve: (ref, o) => inner.resolve(ref, o),
    pusher: (name) => inner.pusher(name),
    async fetcher() {
      return {
        async fetch(desc: Descriptor, options: FetchOptions = {}): Promise<FetchStream> {
          const signal = options.signal;
          const offset = plan.ignoreRange ? 0 : (options.offset ?? 0);
          plan.calls?.push({ digest: desc.digest, offset: options.offset ?? 0 });
          const upstream = await fetcher.fetch(desc, { ...options, offset });
          const fail = plan.fail?.get(desc.digest);
          const stall = plan.stall?.get(desc.digest);
          async function* gen(): AsyncGenerator<Buffer> {
            let sent = 0;
            for await (const piece of upstream as AsyncIterable<Buffer>) {
              for (let i = 0; i < piece.byteLength; i += chunk) {
                let part = piece.subarray(i, i + chunk);
                if (stall !== undefined && sent + part.byteLength > stall) {
                  part = part.subarray(0, stall - sent);
                  if (part.byteLength > 0) yield part;
                  sent += part.byteLength;
                  await new Promise((_, reject) => {
                    if (signal?.aborted) reject(signal.reason);
                    signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
                  });
                }
                if (fail && sent + part.byteLength > fail.after) {
                  const head = part.subarray(0, Math.max(0, fail.after - sent));
                  if (head.byteLength > 0) yield head;
                  await fail.when;
                  throw fail.error;
                }
                if (plan.delayMs) await sleep(plan.delayMs, undefined, { signal });
                sent += part.byteLength;
                yield part;
              }
            }
          }
          const out = Readable.from(gen(), { objectMode: false }) as FetchStream;
          if (plan.ignoreRange && (options.offset ?? 0) > 0) out.rangeIgnored = true;
          out.once("close", () => upstream.destroy());
          return out;
        },
      };
    },
  };
}
