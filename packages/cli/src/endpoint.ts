/**
 * Where a command reads or writes: an OCI image layout on disk (`oci:DIR[:NAME]`, as skopeo
 * spells it) or a registry reference (`host[:port]/repo[:tag][@digest]`).
 */
import { resolve as resolvePath } from "node:path";
import { LocalResolver, type ContentStore, type Resolver } from "@ferry/core";
import { chainCredentials, createCredentialStore, createRegistryResolver, type CredentialStore, type RegistryResolver } from "@ferry/fetcher";
import type { FsStore } from "@ferry/store-fs";
import { openLayout } from "./store.ts";
import { UsageError } from "./usage-error.ts";

/**
 * Resolver options from the environment: `FERRY_SOCKET_READS=0` reads every blob through undici
 * instead of ferry's own connections (large plain-HTTP blobs straight from the socket, smaller
 * ones over keep-alive connections): an escape hatch, e.g. for a middlebox they upset.
 */
export function registryEnvOptions(env: Record<string, string | undefined> = process.env): { socketReadMinBytes?: number; keepAliveReads?: boolean } {
  return env.FERRY_SOCKET_READS === "0" ? { socketReadMinBytes: Number.POSITIVE_INFINITY, keepAliveReads: false } : {};
}

export type Target = { kind: "oci"; dir: string; name?: string } | { kind: "registry"; ref: string };

/**
 * Parse `oci:DIR[:NAME]` or a registry reference. The directory ends at the first `:`, as
 * skopeo reads it: a name may hold colons and slashes (`oci:store:127.0.0.1:5000/app:1`, the
 * names `pull` records), a directory may not.
 */
export function parseTarget(text: string, cwd: string): Target {
  if (!text.startsWith("oci:")) return { kind: "registry", ref: text };
  const rest = text.slice(4);
  const colon = rest.indexOf(":");
  let dir = rest;
  let name: string | undefined;
  if (colon >= 0) {
    dir = rest.slice(0, colon);
    name = rest.slice(colon + 1) || undefined;
  }
  if (dir === "") throw new UsageError(`no directory in ${JSON.stringify(text)} (use oci:DIR[:NAME])`);
  return { kind: "oci", dir: resolvePath(cwd, dir), ...(name !== undefined ? { name } : {}) };
}

/** Options for the registry side. */
export interface RegistryFlags {
  insecure: string[];
  /** `--user USER:PASS`: used for every registry of the command, before docker's config.json. */
  user?: string;
  /** `--per-host N`: requests in flight per registry host (the resolver's `concurrencyPerHost`). */
  perHost?: number;
}

/** `USER:PASS` → a credential store that offers it for any host, then docker's config and helpers. */
export function credentialsFor(user: string | undefined): CredentialStore {
  const docker = createCredentialStore();
  if (user === undefined) return docker;
  const colon = user.indexOf(":");
  if (colon <= 0) throw new UsageError("--user must be USER:PASSWORD");
  const cred = { username: user.slice(0, colon), password: user.slice(colon + 1) };
  return chainCredentials({ get: async () => cred }, docker);
}

export interface OpenedTarget {
  /** What `copy`/`pull` take: the registry resolver, or the layout's store. */
  endpoint: Resolver | ContentStore;
  /** The same as a resolver (a layout through core's `LocalResolver`). */
  resolver: Resolver;
  /** The layout, for `oci:` targets. */
  store?: FsStore;
}

/** Opens registries and stores lazily and closes everything once. */
export class Endpoints {
  readonly #flags: RegistryFlags;
  #registry: RegistryResolver | undefined;

  constructor(flags: RegistryFlags) {
    this.#flags = flags;
  }

  /** The shared registry resolver (one connection pool for the whole command). */
  registry(): RegistryResolver {
    this.#registry ??= createRegistryResolver({
      insecure: this.#flags.insecure,
      credentials: credentialsFor(this.#flags.user),
      ...(this.#flags.perHost !== undefined ? { concurrencyPerHost: this.#flags.perHost } : {}),
      ...registryEnvOptions(),
    });
    return this.#registry;
  }

  /** Open a layout (see {@link openLayout}). */
  layout(dir: string, mustExist: boolean): Promise<FsStore> {
    return openLayout(dir, mustExist);
  }

  /** A target as a copy endpoint plus the reference to use on it. */
  async open(target: Target, role: "source" | "destination"): Promise<OpenedTarget> {
    if (target.kind === "registry") {
      const registry = this.registry();
      return { endpoint: registry, resolver: registry };
    }
    const store = await this.layout(target.dir, role === "source");
    return { endpoint: store, resolver: new LocalResolver(store), store };
  }

  /**
   * Open `text` (a registry reference or `oci:DIR[:NAME]`) as a source: the layout must exist, and
   * `ref` is what to resolve on it (the layout's name, see {@link sourceName}; else `text`).
   */
  async source(text: string, cwd: string): Promise<OpenedTarget & { target: Target; ref: string }> {
    const target = parseTarget(text, cwd);
    const opened = await this.open(target, "source");
    const ref = target.kind === "oci" ? await sourceName(opened.store as FsStore, target) : text;
    return { ...opened, target, ref };
  }

  async close(): Promise<void> {
    await this.#registry?.close();
  }
}

/** The name to read from a layout source: the given one, else its only name. */
export async function sourceName(store: ContentStore, target: Extract<Target, { kind: "oci" }>): Promise<string> {
  if (target.name !== undefined) return target.name;
  const names = await store.listNames();
  if (names.length === 1) return (names[0] as { name: string }).name;
  throw new UsageError(
    names.length === 0
      ? `the layout ${target.dir} has no named image`
      : `the layout ${target.dir} has ${names.length} names (${names.map((n) => n.name).join(", ")}): say oci:DIR:NAME`,
  );
}

export { storeDir } from "./store.ts";
