/** Shared helpers for the registry tests: a server per test file and small request wrappers. */
import { InternalError } from "@ferry/core";
import { createHash, randomBytes } from "node:crypto";
import { createRegistry, type ListeningRegistry, type Registry, type RegistryOptions } from "../src/index.ts";

export interface Running {
  registry: Registry;
  server: ListeningRegistry;
  url: string;
  close(): Promise<void>;
}

export async function startRegistry(options: RegistryOptions = {}): Promise<Running> {
  const registry = createRegistry(options);
  const server = await registry.listen(0);
  return {
    registry,
    server,
    url: server.url,
    close: () => registry.close(),
  };
}

export function sha256(data: Uint8Array | string): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

export function randomBlob(size: number): Buffer {
  return randomBytes(size);
}

/** Push a blob monolithically (POST then PUT with the body). Returns its digest. */
export async function pushBlob(url: string, repo: string, data: Uint8Array): Promise<string> {
  const digest = sha256(data);
  const post = await fetch(`${url}/v2/${repo}/blobs/uploads/`, { method: "POST" });
  if (post.status !== 202) throw new InternalError(`POST ${post.status}`);
  const loc = new URL(post.headers.get("location")!, url);
  loc.searchParams.set("digest", digest);
  const put = await fetch(loc, {
    method: "PUT",
    body: data,
    headers: { "Content-Type": "application/octet-stream" },
  });
  if (put.status !== 201) throw new InternalError(`PUT ${put.status} ${await put.text()}`);
  return digest;
}

export interface TestImage {
  manifest: Buffer;
  digest: string;
  config: Buffer;
  layers: Buffer[];
}

/** A small image manifest whose blobs are pushed to `repo`. */
export async function pushImage(
  url: string,
  repo: string,
  tag: string | undefined,
  extra: Record<string, unknown> = {},
  layerSizes: number[] = [1000, 2000],
): Promise<TestImage> {
  const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] }, n: Math.random() }));
  const layers = layerSizes.map((n) => randomBlob(n));
  await pushBlob(url, repo, config);
  for (const l of layers) await pushBlob(url, repo, l);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256(config), size: config.length },
      layers: layers.map((l) => ({ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: sha256(l), size: l.length })),
      ...extra,
    }),
  );
  const digest = sha256(manifest);
  const res = await fetch(`${url}/v2/${repo}/manifests/${tag ?? digest}`, {
    method: "PUT",
    body: manifest,
    headers: { "Content-Type": "application/vnd.oci.image.manifest.v1+json" },
  });
  if (res.status !== 201) throw new InternalError(`manifest PUT ${res.status} ${await res.text()}`);
  return { manifest, digest, config, layers };
}

export async function errorCode(res: Response): Promise<string | undefined> {
  const body = (await res.json()) as { errors?: Array<{ code: string }> };
  return body.errors?.[0]?.code;
}
