import type { ContentStore, Leaser } from "../content.ts";
import type { StatusReporter } from "../status/reporter.ts";
import type { Descriptor } from "../descriptor.ts";
import type { Digest } from "../digest.ts";
import { canListReferrers } from "../graph/referrers.ts";
import { LocalPusher } from "../local/local-pusher.ts";
import { asResolver, LocalResolver } from "../local/local-resolver.ts";
import { InvalidArgumentError } from "../errors.ts";
import type { PlatformMatcher, PlatformSpec } from "../platform.ts";
import type { TransferOperation } from "../status/operation.ts";
import type { Resolver, TransferHooks } from "../transport.ts";
import { ingestRef } from "../content-helpers/ingest-ref.ts";
import { buildHandler, selectsPlatforms, type TransferOptions } from "./options.ts";
import { requirePlatformMatch } from "./platform-match.ts";
import { splitReference } from "./reference.ts";
import { runOperation } from "./run-operation.ts";
import { registryRoot } from "./registry-root.ts";
import { writeReferrersTags } from "./referrers-tag.ts";
import { readManifest, transferGraph } from "./transfer-graph.ts";

/** Either side of a copy: a registry (or any resolver) or a local content store. */
export type Endpoint = Resolver | ContentStore;

export interface CopyOptions extends TransferOptions {
  /** Where `src` is resolved and read. A content store reads its names (e.g. an OCI layout). */
  from: Endpoint;
  /** Where the graph goes. A content store records `dst` as a name; a registry gets the tag of `dst`. */
  to: Endpoint;
  /**
   * Repository on the destination registry that may hold the blobs already: blobs are mounted
   * from it instead of uploaded. Default: the source repository when both sides are on the same
   * registry host, else none.
   */
  mountFrom?: string;
  /** Do not record a name / tag at the destination (only the content). Default false. */
  untagged?: boolean;
}

/**
 * Copy the graph `src` points to from one endpoint to another: registry → registry, registry →
 * store (a pull), store → registry (a push), store → store. Children go before parents and the
 * tag last, so an interrupted copy never leaves a manifest without its blobs.
 */
export function copy(src: string, dst: string, options: CopyOptions): TransferOperation {
  return transfer(src, dst, options, "all");
}

/** @internal Shared by copy, pull and push. */
export function transfer(src: string, dst: string, options: CopyOptions, defaultPlatform: PlatformSpec | PlatformMatcher): TransferOperation {
  return runOperation(options, async (reporter, signal) => {
    // A store destination keeps its content from garbage collection until the walk is done (a
    // pull reuses blobs that no name reaches before it records its own).
    const to = asResolver(options.to);
    const lease = to instanceof LocalResolver && isLeaser(to.store) ? await to.store.lease() : undefined;
    try {
      return await walkAndPush(reporter, signal, to);
    } finally {
      await lease?.release();
    }
  });

  async function walkAndPush(reporter: StatusReporter, signal: AbortSignal, to: Resolver): Promise<{ root: Descriptor; name: string }> {
    const concurrency = options.concurrency ?? 4;
    const manifestConcurrency = options.manifestConcurrency ?? 3;
    const smallBlobConcurrency = options.smallBlobConcurrency ?? (options.concurrency === undefined ? 16 : undefined);
    if (!(concurrency >= 1) || !(manifestConcurrency >= 1) || (smallBlobConcurrency !== undefined && !(smallBlobConcurrency >= 1))) {
      throw new InvalidArgumentError("concurrency must be at least 1", { details: { concurrency, manifestConcurrency, smallBlobConcurrency } });
    }
    const handler = buildHandler(options, defaultPlatform);
    const from = asResolver(options.from);

    reporter.resolving(src);
    // A resolver that calls `onRetry` has its waits reported as operation-wide `retrying` events.
    const resolveOptions: { signal: AbortSignal } & TransferHooks = { signal, onRetry: (info) => reporter.retrying(info) };
    const resolved = await from.resolve(src, resolveOptions);
    reporter.resolved(src, resolved.name, resolved.descriptor);
    const source = await from.fetcher(resolved.name);
    let root = resolved.descriptor;

    // Indexes read to decide on the root (platform match, registry root) are read once: the walk
    // takes them from here (a second GET of the root index per pull otherwise).
    const preread = new Map<string, Uint8Array>();
    const readOnce = async (d: Descriptor): Promise<Uint8Array> => {
      const got = preread.get(d.digest) ?? (await readManifest(source, d, signal));
      preread.set(d.digest, got);
      return got;
    };

    let destination;
    let tag: string | undefined;
    let mountFrom = options.mountFrom;
    let registryRepository: string | undefined;
    if (to instanceof LocalResolver) {
      destination = new LocalPusher(to.store);
      tag = dst;
      if (selectsPlatforms(options, defaultPlatform)) await requirePlatformMatch({ root, handler, signal, load: readOnce });
    } else {
      const parts = splitReference(dst);
      registryRepository = parts.repository;
      if (!to.pusher) throw new InvalidArgumentError("the destination resolver cannot push", { details: { dst } });
      destination = await to.pusher(parts.repository);
      root = await registryRoot({
        root,
        handler,
        signal,
        load: readOnce,
        ...(from instanceof LocalResolver ? { store: from.store } : {}),
      });
      if (root.digest !== resolved.descriptor.digest) {
        // Only one platform's image goes: the index itself is not pushed.
        reporter.blob(resolved.descriptor, "upload", ingestRef(resolved.descriptor)).skipped("platform");
      }
      if (parts.digest !== undefined && parts.digest !== root.digest) {
        throw new InvalidArgumentError(`destination digest ${parts.digest} differs from the source's ${root.digest}`, {
          details: { dst, digest: root.digest },
        });
      }
      tag = parts.tag ?? (parts.digest === undefined ? "latest" : undefined);
      // Within one registry a blob can be mounted from the source repository: no bytes move.
      if (mountFrom === undefined && !(from instanceof LocalResolver) && sameRegistry(resolved.name, parts.repository)) {
        mountFrom = resolved.name;
      }
    }
    if (options.untagged) tag = undefined;

    let referrers: ((d: Descriptor, s: AbortSignal) => Promise<Descriptor[]>) | undefined;
    /** Referrers listed at the source, by subject: all of them are at the destination once the walk succeeds. */
    const copiedReferrers = new Map<Digest, Descriptor[]>();
    if (options.referrers) {
      if (!canListReferrers(from)) throw new InvalidArgumentError("the source cannot list referrers", { details: { src } });
      const artifactType = typeof options.referrers === "object" ? options.referrers.artifactType : undefined;
      // A store answers from one scan of its small blobs: asked per subject, it re-read them all
      // for every manifest of the walk (manifests × blobs).
      let scan: Promise<Map<Digest, Descriptor[]>> | undefined;
      referrers = async (d, s) => {
        const opts = { signal: s, ...(artifactType ? { artifactType } : {}) };
        const list =
          from instanceof LocalResolver
            ? ((await (scan ??= from.referrersBySubject(opts))).get(d.digest) ?? [])
            : await from.referrers(resolved.name, d.digest, opts);
        if (list.length > 0) copiedReferrers.set(d.digest, list);
        return list;
      };
    }

    await transferGraph({
      preread,
      ...(referrers ? { referrers } : {}),
      reporter,
      source,
      destination,
      direction: destination instanceof LocalPusher ? "download" : "upload",
      root,
      ...(tag !== undefined ? { tag } : {}),
      handler,
      signal,
      concurrency,
      manifestConcurrency,
      ...(smallBlobConcurrency !== undefined ? { smallBlobConcurrency } : {}),
      ...(mountFrom !== undefined ? { mountFrom } : {}),
      skipExisting: options.skipExisting ?? true,
      nonDistributable: options.nonDistributable ?? false,
    });
    // A registry without the referrers API needs the tag-schema index to make them findable.
    if (copiedReferrers.size > 0 && registryRepository !== undefined && canListReferrers(to)) {
      await writeReferrersTags({ destination: to, repository: registryRepository, pusher: destination, bySubject: copiedReferrers, reporter, signal });
    }
    return { root, name: resolved.name };
  }
}

function isLeaser(store: unknown): store is Leaser {
  return typeof (store as Partial<Leaser>).lease === "function";
}

/** The registry host of a name, when its first component names one (`host:port/…`, `a.b/…`). */
function registryOf(name: string): string | undefined {
  const slash = name.indexOf("/");
  if (slash < 0) return undefined;
  const first = name.slice(0, slash);
  return first.includes(".") || first.includes(":") || first === "localhost" ? first.toLowerCase() : undefined;
}

function sameRegistry(a: string, b: string): boolean {
  const ra = registryOf(a);
  return ra !== undefined && ra === registryOf(b);
}
