import { childrenHandler } from "../graph/children-handler.ts";
import type { Handler } from "../graph/handler.ts";
import { filterPlatforms, limitManifests, type PlatformComparer } from "../graph/platform-filter.ts";
import { type PlatformMatcher, type PlatformSpec, platformMatcher } from "../platform.ts";

/** Options every transfer operation (pull, push, copy) takes. */
export interface TransferOptions {
  /** Cancels the operation; finished blobs stay committed, partial ingests stay resumable. */
  signal?: AbortSignal;
  /** Blobs (configs, layers) moved at once. Default 4. */
  concurrency?: number;
  /**
   * Blobs under 1 MiB moved at once, on a limiter of their own beside `concurrency` (their cost
   * is round trips and per-file work, not bandwidth: 16 at once pulled 1000 blobs of 4–64 KiB
   * ~1.3× faster than 4). Default 16 when `concurrency` is not given; when it is, small blobs
   * share it (so `concurrency: 1` still moves one blob at a time).
   */
  smallBlobConcurrency?: number;
  /** Manifests and indexes handled at once (a separate limiter from blobs). Default 3. */
  manifestConcurrency?: number;
  /**
   * Which platforms of an index to transfer: a specifier (`"linux/arm64"`), a list in preference
   * order, a predicate, a matcher (`platformMatcher(…)`, or any `{ match, less? }`: `less` gives
   * the preference order, else the index order), or `"all"`. Default: `"all"` for push and copy,
   * the host platform for pull.
   */
  platform?: PlatformSpec | PlatformMatcher | PlatformComparer;
  /**
   * How many platform manifests of each index to keep (the best ones first); 0 keeps every
   * match. Default 1 when `platform` is not `"all"` (pick the single best), else 0.
   */
  platformLimit?: number;
  /** Minimum ms between two progress events of one ref, and between totals. Default 100. */
  throttleMs?: number;
  /**
   * Ask the destination about each manifest and index before descending into it, and skip what
   * it has (a manifest it has means its whole sub-graph). Blobs are not asked about separately:
   * the destination's `push` skips a blob it has either way. Default true.
   */
  skipExisting?: boolean;
  /** Also move non-distributable (foreign) layers. Default false: they are reported as skipped. */
  nonDistributable?: boolean;
  /**
   * Also copy the manifests that refer to each copied manifest (OCI 1.1 referrers: signatures,
   * SBOMs…), after their subject; `{ artifactType }` keeps only one type. The source must list
   * referrers (a registry resolver, or a store: see `LocalResolver.referrers`). Default false.
   */
  referrers?: boolean | { artifactType?: string };
  /** Wrap the graph handler, e.g. `(h) => filterChildren(h, keep)`. Default: none. */
  handler?: (base: Handler) => Handler;
}

function isMatcher(v: unknown): v is PlatformComparer {
  return typeof v === "object" && v !== null && !Array.isArray(v) && typeof (v as PlatformComparer).match === "function";
}

/** Whether the options select platforms (anything but "all"). */
export function selectsPlatforms(options: TransferOptions, defaultPlatform: PlatformSpec | PlatformMatcher): boolean {
  return (options.platform ?? defaultPlatform) !== "all";
}

/** Compose the handler for the given options. */
export function buildHandler(options: TransferOptions, defaultPlatform: PlatformSpec | PlatformMatcher): Handler {
  const spec = options.platform ?? defaultPlatform;
  let h: Handler = childrenHandler;
  if (spec !== "all") {
    const m = isMatcher(spec) ? spec : platformMatcher(spec);
    h = filterPlatforms(h, m);
    const limit = options.platformLimit ?? 1;
    if (limit > 0) h = limitManifests(h, m, limit);
  } else if (options.platformLimit !== undefined && options.platformLimit > 0) {
    // "all", best first: ranking by the host's preferences.
    h = limitManifests(h, platformMatcher("all"), options.platformLimit);
  }
  return options.handler ? options.handler(h) : h;
}
