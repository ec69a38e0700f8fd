/**
 * The engine under pull, push and copy: walk the graph from a root with a handler, and move each
 * node from a {@link Fetcher} to a {@link Pusher}, children before parents, manifests after their
 * blobs, the root last, then the tag. A node the destination already has is not descended into
 * (its sub-graph is complete: nothing is ever committed before its children), except an index,
 * whose children are still checked: it may have been written by a walk that kept one platform.
 */
import type { Descriptor } from "../descriptor.ts";
import { ingestRef } from "../content-helpers/ingest-ref.ts";
import { digestOf } from "../digest.ts";
import { DigestMismatchError, InvalidManifestError, SizeMismatchError, throwIfAborted } from "../errors.ts";
import { dispatch } from "../graph/dispatch.ts";
import type { Handler } from "../graph/handler.ts";
import { MaxManifestBytes } from "../manifest.ts";
import { isIndexMediaType, isManifestLike, isNonDistributable } from "../media-types.ts";
import type { TransferDirection } from "../status/events.ts";
import type { BlobStatus, StatusReporter } from "../status/reporter.ts";
import { LocalPusher, type LocalPushOptions } from "../local/local-pusher.ts";
import type { Fetcher, Pusher, TransferHooks } from "../transport.ts";
import { LocalFetcher } from "../local/local-fetcher.ts";
import { fetchSource, memorySource } from "./metered-source.ts";
import { withLentChunks } from "./push-chunks.ts";

export interface TransferGraphOptions {
  /**
   * Manifests and indexes read before the walk (the checks that decide on the root): the walk
   * takes each from here once instead of asking the source again.
   */
  preread?: Map<string, Uint8Array>;
  reporter: StatusReporter;
  source: Fetcher;
  destination: Pusher;
  direction: TransferDirection;
  root: Descriptor;
  /** Name to record the root under (store name or registry tag). Default: none. */
  tag?: string;
  handler: Handler;
  signal: AbortSignal;
  /** Blobs moved at once. */
  concurrency: number;
  /** Manifests handled at once. */
  manifestConcurrency: number;
  /** Blobs under 1 MiB moved at once on their own limiter. Default: they share `concurrency`. */
  smallBlobConcurrency?: number;
  /** Repository to try cross-repository mounts from (blobs only). */
  mountFrom?: string;
  /** Ask the destination before moving each node. */
  skipExisting: boolean;
  /** Move non-distributable layers too. */
  nonDistributable: boolean;
  /** Lists the referrers of a manifest at the source; when given, they are copied after their subject. */
  referrers?: (desc: Descriptor, signal: AbortSignal) => Promise<Descriptor[]>;
}

/** The blob an error belongs to, so the operation can name it in its `error` event. */
export const failedBlob = new WeakMap<object, BlobStatus>();

export async function transferGraph(o: TransferGraphOptions): Promise<void> {
  const { reporter, source, destination, root, tag, signal } = o;
  const blobs = new Map<string, BlobStatus>();
  const blobOf = (d: Descriptor): BlobStatus => {
    let b = blobs.get(d.digest);
    if (!b) {
      b = reporter.blob(d, o.direction, ingestRef(d));
      blobs.set(d.digest, b);
    }
    return b;
  };
  let rootTagged = false;
  const existingIndexes = new Set<string>();
  /** Manifests met by the walk: the subjects whose referrers are looked up afterwards. */
  const manifests: Descriptor[] = [];

  const guard = async <T>(d: Descriptor, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      if (typeof err === "object" && err !== null && !failedBlob.has(err)) failedBlob.set(err, blobOf(d));
      throw err;
    }
  };

  const walk = (roots: Descriptor[]) => dispatch(roots, {
    handler: (d, ctx) => guard(d, () => o.handler(d, ctx)),
    manifestConcurrency: o.manifestConcurrency,
    blobConcurrency: o.concurrency,
    ...(o.smallBlobConcurrency !== undefined ? { smallBlobConcurrency: o.smallBlobConcurrency } : {}),
    signal,
    load: (d, s) => {
      const ready = o.preread?.get(d.digest);
      if (ready !== undefined) {
        o.preread?.delete(d.digest);
        return Promise.resolve(ready);
      }
      return guard(d, () => readManifest(source, d, s, { onRetry: (info) => blobOf(d).retrying(info) }));
    },
    discover: (d) => {
      if (isManifestLike(d.mediaType)) manifests.push(d);
      // A referrer walk meets its subject again: it is already finished, say nothing.
      const b = blobOf(d);
      if (!b.ended) b.waiting();
    },
    skip: (d, reason) => {
      // A fresh status: the skipped child may be reached again through another parent.
      reporter.blob(d, o.direction, ingestRef(d)).skipped(reason);
    },
    enter: (d, ctx) =>
      guard(d, async () => {
        const b = blobOf(d);
        if (!o.nonDistributable && isNonDistributable(d.mediaType)) {
          b.skipped("nondistributable");
          return false;
        }
        // Only manifests and indexes are asked here (what they have means a whole sub-graph to
        // skip). A blob has nothing below it and `push` uploads it "unless it exists" (the Pusher
        // contract): asking here too cost a second HEAD (registry) or a second lookup that throws
        // NotFound (store) per blob, which matters for many small blobs (issue 6, case 4).
        if (o.skipExisting && isManifestLike(d.mediaType) && (await destination.exists(d, { signal: ctx.signal, onRetry: (info) => b.retrying(info) }))) {
          // An index may have been written by a walk that kept only some platforms: look at its
          // children anyway (one existence check each). A manifest's children are fixed, except
          // that a walk without `nonDistributable` wrote it without its foreign layers.
          if (isIndexMediaType(d.mediaType) || o.nonDistributable) {
            existingIndexes.add(d.digest);
            return true;
          }
          b.exists();
          return false;
        }
        return true;
      }),
    leave: (d, ctx) =>
      guard(d, async () => {
        const b = blobOf(d);
        if (existingIndexes.has(d.digest)) {
          b.exists();
          return;
        }
        const manifest = isManifestLike(d.mediaType);
        // The walk's signal: it also aborts when another branch fails.
        const signal = ctx.signal;
        const isRoot = d.digest === root.digest;
        const local = destination instanceof LocalPusher;
        let src = manifest ? memorySource(await ctx.content(d), b) : fetchSource(source, d, b, signal);
        // A push from a store may lend its chunks (no buffer allocated per read).
        if (!manifest && !local && source instanceof LocalFetcher) src = withLentChunks(src, source, d, b, signal);
        if (local) b.offsetFromDestination();
        const opts: LocalPushOptions = {
          signal,
          onRetry: (info) => b.retrying(info),
          onProgress: (offset) => b.stored(offset),
          onResumed: (offset) => b.resumed(offset),
          onLocked: (i) => b.retrying({ reason: "ingest locked by another writer", ...i }),
          ...(!manifest && o.mountFrom ? { mountFrom: o.mountFrom } : {}),
          ...(isRoot && tag !== undefined ? { tag } : {}),
        };
        const outcome = await destination.push(d, src, opts);
        if (outcome === "mounted") b.mounted(o.mountFrom ?? "");
        else if (outcome === "exists") b.exists();
        else b.done();
        if (isRoot && tag !== undefined) {
          // "exists" may mean the pusher never sent the manifest, so the tag may be missing.
          if (outcome === "exists" && destination.tag) await destination.tag(d, tag, { signal });
          rootTagged = true;
        }
      }),
  });

  await walk([root]);
  const listReferrers = o.referrers;
  if (listReferrers) {
    // Referrers go after their subject (a registry may check the subject exists), breadth first
    // so referrers of referrers (signatures of SBOMs…) follow too.
    const listed = new Set<string>();
    while (manifests.length > 0) {
      const subjects = manifests.splice(0);
      const next: Descriptor[] = [];
      for (const m of subjects) {
        if (listed.has(m.digest)) continue;
        listed.add(m.digest);
        throwIfAborted(signal);
        for (const r of await guard(m, () => listReferrers(m, signal))) {
          if (!listed.has(r.digest) && !blobs.has(r.digest)) next.push(r);
        }
      }
      if (next.length > 0) await walk(next);
    }
  }

  if (tag !== undefined && !rootTagged) {
    throwIfAborted(signal);
    await guard(root, async () => {
      if (destination.tag) {
        await destination.tag(root, tag, { signal });
      } else {
        const bytes = await readManifest(source, root, signal);
        await destination.push(root, memorySource(bytes, reporter.blob(root, o.direction, ingestRef(root))), { signal, tag });
      }
    });
  }
  if (tag !== undefined) reporter.tagged(tag, root);
}

/** Read a manifest-like document from `source`: capped at 4 MiB, size and digest checked. */
export async function readManifest(source: Fetcher, desc: Descriptor, signal: AbortSignal, hooks: TransferHooks = {}): Promise<Uint8Array> {
  if (desc.size > MaxManifestBytes) {
    throw new InvalidManifestError(`manifest ${desc.digest} is ${desc.size} bytes, over the ${MaxManifestBytes}-byte limit`, {
      details: { digest: desc.digest, size: desc.size },
    });
  }
  const stream = await source.fetch(desc, { ...hooks, signal });
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      n += chunk.byteLength;
      if (n > desc.size) throw new SizeMismatchError(`manifest ${desc.digest} is longer than ${desc.size} bytes`, { details: { digest: desc.digest } });
      chunks.push(chunk);
    }
  } finally {
    stream.destroy();
  }
  const bytes = Buffer.concat(chunks, n);
  if (n !== desc.size) throw new SizeMismatchError(`manifest ${desc.digest}: got ${n} bytes, expected ${desc.size}`, { details: { digest: desc.digest } });
  const got = digestOf(bytes, desc.digest.startsWith("sha512:") ? "sha512" : "sha256");
  if (got !== desc.digest) throw new DigestMismatchError(`manifest has digest ${got}, expected ${desc.digest}`, { details: { digest: desc.digest, got } });
  return bytes;
}
