/**
 * Concurrent graph dispatch. Every descriptor of the graph is visited once (deduplicated by
 * digest across the whole walk); children finish before their parent's `leave`, so a parent is
 * only ever committed after its whole sub-graph. Manifests and blobs use separate limiters, and a
 * node gives its slot back before it waits for its children: a deep tree cannot deadlock the
 * limiter, even with a concurrency of 1.
 */
import { setMaxListeners } from "node:events";
import pLimit from "p-limit";
import type { Descriptor } from "../descriptor.ts";
import { abortError, InvalidArgumentError, InvalidManifestError, isAborted, throwIfAborted } from "../errors.ts";
import { isManifestLike } from "../media-types.ts";
import type { SkipReason } from "../status/events.ts";
import type { Handler, WalkContext } from "./handler.ts";

export interface NodeContext {
  readonly signal: AbortSignal;
  /** The node's bytes (manifests and indexes only), as loaded for the handler. */
  content(desc: Descriptor): Promise<Uint8Array>;
}

export interface DispatchOptions {
  /** Maps a descriptor to its children (compose with `filterPlatforms`, `limitManifests`, …). */
  handler: Handler;
  /** Reads a manifest's or index's bytes; called at most once per digest. */
  load(desc: Descriptor, signal: AbortSignal): Promise<Uint8Array>;
  /** Manifests and indexes handled at once. Default 3. */
  manifestConcurrency?: number;
  /** Other blobs (configs, layers) handled at once. Default 4. */
  blobConcurrency?: number;
  /**
   * Blobs smaller than `smallBlobBytes` handled at once, on a limiter of their own (a small
   * blob's cost is round trips and per-file work, not bandwidth, so more of them overlap
   * well). Default: none, small blobs share `blobConcurrency`.
   */
  smallBlobConcurrency?: number;
  /** Size below which a blob counts as small. Default 1 MiB. */
  smallBlobBytes?: number;
  /** Cancels the walk; in-flight callbacks see an aborted `signal`. */
  signal?: AbortSignal;
  /** A descriptor was seen for the first time (before it waits for a slot). */
  discover?(desc: Descriptor): void;
  /** A handler dropped this child. */
  skip?(desc: Descriptor, reason: SkipReason): void;
  /**
   * Runs in the node's slot before its children are looked at. Resolve `false` to skip the node
   * and its whole sub-graph (e.g. the destination already has it). Default: always descend.
   */
  enter?(desc: Descriptor, ctx: NodeContext): Promise<boolean>;
  /** Runs in a slot once every child is done: transfer or commit the node itself. */
  leave?(desc: Descriptor, ctx: NodeContext): Promise<void>;
  /** Which limiter a descriptor uses. Default: manifest-like media types are manifests. */
  isManifest?(desc: Descriptor): boolean;
}

/**
 * Visit `roots` and everything below them. Resolves when every node is left; on the first failure
 * aborts the rest, waits for in-flight callbacks to settle, then rejects with that first error.
 */
export async function dispatch(roots: readonly Descriptor[], options: DispatchOptions): Promise<void> {
  const manifestConcurrency = options.manifestConcurrency ?? 3;
  const blobConcurrency = options.blobConcurrency ?? 4;
  const { smallBlobConcurrency } = options;
  const smallBlobBytes = options.smallBlobBytes ?? 1024 * 1024;
  if (!(manifestConcurrency >= 1) || !(blobConcurrency >= 1) || (smallBlobConcurrency !== undefined && !(smallBlobConcurrency >= 1))) {
    throw new InvalidArgumentError("concurrency must be at least 1", { details: { manifestConcurrency, blobConcurrency, smallBlobConcurrency } });
  }
  throwIfAborted(options.signal);
  const manifests = pLimit(manifestConcurrency);
  const blobs = pLimit(blobConcurrency);
  const smallBlobs = smallBlobConcurrency === undefined ? blobs : pLimit(smallBlobConcurrency);
  const controller = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, controller.signal]) : controller.signal;
  // Every in-flight node's transport and writer listen on this signal: not a leak, just many.
  setMaxListeners(Math.max(10, (manifestConcurrency + blobConcurrency + (smallBlobConcurrency ?? 0)) * 8), signal);
  const isManifest = options.isManifest ?? ((d: Descriptor) => isManifestLike(d.mediaType));

  const loaded = new Map<string, Promise<Uint8Array>>();
  const content = (desc: Descriptor): Promise<Uint8Array> => {
    let p = loaded.get(desc.digest);
    if (!p) {
      p = options.load(desc, signal);
      loaded.set(desc.digest, p);
    }
    return p;
  };
  const seen = new Map<string, Promise<void>>();
  // A child dropped under one parent may still be reached through another: only report it once
  // and only when it is not part of the walk.
  const walkCtx: WalkContext = { signal, content, skip: (d, r) => void (seen.has(d.digest) || options.skip?.(d, r)) };
  const nodeCtx: NodeContext = { signal, content };

  const all: Promise<void>[] = [];
  let firstError: unknown;
  const fail = (err: unknown): void => {
    if (firstError !== undefined) return;
    // An abort caused by our own controller is a consequence, not the cause.
    firstError = options.signal?.aborted ? abortError(options.signal) : err;
    controller.abort(firstError);
  };

  /** Kinds each digest was reached as (a manifest, a blob). */
  const kinds = new Map<string, boolean>();
  const visit = (desc: Descriptor): Promise<void> => {
    const known = seen.get(desc.digest);
    const asManifest = isManifest(desc);
    if (known) {
      // One digest as a manifest under one parent and as a plain blob under another: the blob
      // visit would stand for the manifest's whole sub-graph, which would never be walked.
      if (kinds.get(desc.digest) !== asManifest) {
        const err = new InvalidManifestError(`${desc.digest} is referenced both as a manifest and as a blob (${desc.mediaType})`, { details: { digest: desc.digest } });
        fail(err);
        return Promise.reject(err);
      }
      return known;
    }
    kinds.set(desc.digest, asManifest);
    options.discover?.(desc);
    const limit = asManifest ? manifests : desc.size < smallBlobBytes ? smallBlobs : blobs;
    const p = (async () => {
      // Phase 1 (in a slot): decide, and find the children.
      let children: Descriptor[] = [];
      let descend = true;
      let leftInSlot = false;
      await limit(async () => {
        throwIfAborted(signal);
        descend = options.enter ? await options.enter(desc, nodeCtx) : true;
        if (!descend) return;
        throwIfAborted(signal);
        children = await options.handler(desc, walkCtx);
        if (children.length === 0) {
          // A leaf: no reason to give the slot back before transferring it.
          leftInSlot = true;
          throwIfAborted(signal);
          await options.leave?.(desc, nodeCtx);
        }
      });
      if (!descend || leftInSlot) return;
      // Phase 2 (no slot held): the children.
      await settleAll(children.map(visit));
      // Phase 3 (in a slot again): the node itself.
      await limit(async () => {
        throwIfAborted(signal);
        await options.leave?.(desc, nodeCtx);
      });
      loaded.delete(desc.digest);
    })();
    p.catch(fail);
    seen.set(desc.digest, p);
    all.push(p);
    return p;
  };

  try {
    await settleAll(roots.map(visit));
  } catch (err) {
    fail(err);
  }
  // Every visit must have settled before we report: no writer may still hold a lock.
  let n = 0;
  while (n < all.length) {
    const batch = all.slice(n);
    n = all.length;
    await Promise.allSettled(batch);
  }
  if (firstError !== undefined) throw firstError;
}

/** Like `Promise.all`, but waits for every promise; rejects with the first rejection in time. */
async function settleAll(ps: Promise<void>[]): Promise<void> {
  let first: { err: unknown } | undefined;
  await Promise.all(
    ps.map((p) =>
      p.catch((err: unknown) => {
        // Prefer a real cause over an abort that followed it.
        if (first === undefined || (isAborted(first.err) && !isAborted(err))) first = { err };
      }),
    ),
  );
  if (first) throw first.err;
}
