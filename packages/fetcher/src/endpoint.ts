/**
 * Where requests for one repository go: the registry itself or one of its mirrors, with the URL
 * building and auth scopes of the distribution API.
 */
import type { AuthScope, HostCapability, RegistryResolverOptions } from "./options.ts";
import { defaultScheme, type Reference } from "./reference.ts";

export interface RegistryHost {
  /** `scheme://host[:port]`. */
  base: string;
  /** Capabilities; the registry itself has all of them. */
  capabilities: readonly HostCapability[];
  mirror: boolean;
}

/** Mirrors of `ref.registry` that have `capability`, in order, then the registry itself. */
export function hostsFor(ref: Pick<Reference, "registry" | "apiHost">, capability: HostCapability, options: RegistryResolverOptions): RegistryHost[] {
  const out: RegistryHost[] = [];
  for (const m of options.mirrors?.[ref.registry] ?? []) {
    if (!m.capabilities.includes(capability)) continue;
    const base = m.host.includes("://") ? m.host.replace(/\/+$/, "") : `${defaultScheme(m.host, { insecure: options.insecure })}://${m.host}`;
    out.push({ base, capabilities: m.capabilities, mirror: true });
  }
  out.push({
    base: `${defaultScheme(ref.apiHost, { insecure: options.insecure })}://${ref.apiHost}`,
    capabilities: ["pull", "resolve", "push"],
    mirror: false,
  });
  return out;
}

/** One repository on one host. */
export class RepositoryEndpoint {
  readonly host: RegistryHost;
  readonly repository: string;

  constructor(host: RegistryHost, repository: string) {
    this.host = host;
    this.repository = repository;
  }

  /** `<base>/v2/<repository>/<path>` with optional query parameters. */
  url(path: string, query?: Record<string, string | number | undefined>): URL {
    const u = new URL(`/v2/${this.repository}/${path}`, this.host.base);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) u.searchParams.set(k, String(v));
    return u;
  }

  scopes(...actions: AuthScope["actions"]): AuthScope[] {
    return [{ repository: this.repository, actions }];
  }
}

/** How far a failed attempt got, to report the most informative error across mirrors. */
export function errorRank(err: unknown): number {
  const code = (err as { code?: string } | undefined)?.code;
  switch (code) {
    case "DigestMismatch":
    case "SizeMismatch":
    case "InvalidManifest":
      return 4;
    case "NotFound":
      return 3;
    case "Unauthorized":
    case "Denied":
      return 2;
    case "TooManyRequests":
    case "Unavailable":
    case "Registry":
      return 1;
    default:
      return 0;
  }
}
