/**
 * Boilerplate shared by the examples, kept out of them so each example reads as the few lines
 * that matter: a throwaway local registry, a generated image in it, and tiny argument parsing.
 * Needs no internet: everything runs on 127.0.0.1.
 */
import { realpathSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { copy, type Descriptor } from "@ferry/core";
import { createRegistryResolver } from "@ferry/fetcher";
import { createRegistry } from "@ferry/registry";
import { openFsStore } from "@ferry/store-fs";
import { buildImage, hasTool, startDockerRegistry, type BuiltLayout } from "@ferry/testkit";

export interface LocalRegistry {
  /** `127.0.0.1:PORT` — the host part of image references. */
  host: string;
  /** Which implementation answers. */
  kind: "embedded" | "docker-registry";
  close(): Promise<void>;
}

/**
 * Start a registry on a free loopback port: ferry's embedded `@ferry/registry` (in memory), or
 * the real distribution `docker-registry` when asked for and installed.
 */
export async function startLocalRegistry(options: { dockerRegistry?: boolean } = {}): Promise<LocalRegistry> {
  if (options.dockerRegistry) {
    if (!hasTool("docker-registry")) {
      throw new Error("--docker-registry: docker-registry is not installed (apt-get install docker-registry)");
    }
    const r = await startDockerRegistry();
    return { host: r.host, kind: "docker-registry", close: () => r.stop() };
  }
  const registry = createRegistry();
  const l = await registry.listen(0, "127.0.0.1");
  return { host: l.host, kind: "embedded", close: () => registry.close() };
}

export interface SeedOptions {
  platforms?: string[];
  layers?: number;
  /** Random bytes per layer. */
  layerSize?: number;
}

export interface SeededImage {
  /** `host/repo:tag` */
  reference: string;
  root: Descriptor;
  built: BuiltLayout;
}

/**
 * Generate a random image (real tar layers, correct diff_ids) as an OCI layout in a temp dir and
 * push it to `host` with ferry's own `copy`; the layout is deleted afterwards.
 */
export async function seedImage(host: string, repoTag: string, options: SeedOptions = {}): Promise<SeededImage> {
  const dir = await mkdtemp(join(tmpdir(), "ferry-seed-"));
  const resolver = createRegistryResolver();
  try {
    const built = await buildImage({
      dir: join(dir, "layout"),
      platforms: options.platforms ?? ["linux/amd64"],
      layers: options.layers ?? 2,
      layerSize: options.layerSize ?? 1024 * 1024,
      // Random bytes do not compress: stored deflate blocks give the same size much faster.
      gzipLevel: 0,
    });
    const reference = `${host}/${repoTag}`;
    await copy(built.name, reference, { from: await openFsStore(built.dir), to: resolver }).done;
    return { reference, root: built.root, built };
  } finally {
    await resolver.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Run `body` on `ref`; without one, on a generated image seeded as `repoTag` into a throwaway
 * local registry (stopped afterwards): how each example runs with no arguments.
 */
export async function withImage(ref: string | undefined, repoTag: string, seed: SeedOptions, body: (ref: string) => Promise<void>): Promise<void> {
  if (ref !== undefined) return body(ref);
  const registry = await startLocalRegistry();
  try {
    await body((await seedImage(registry.host, repoTag, seed)).reference);
  } finally {
    await registry.close();
  }
}

/** `--flag value` from argv, or undefined. */
export function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

/** Positional arguments (those not starting with `--` and not a flag's value). */
export function positionals(args: string[], valueFlags: string[] = []): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a.startsWith("--")) {
      if (valueFlags.includes(a)) i++;
      continue;
    }
    out.push(a);
  }
  return out;
}

/** True when this module is the script node was started with (so examples are importable too). */
export function isMain(metaUrl: string): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return realpathSync(resolve(entry)) === realpathSync(fileURLToPath(metaUrl));
  } catch {
    return false;
  }
}
