/**
 * Graph handlers, in the spirit of containerd's image handlers: a handler maps a descriptor to
 * the children the walk should visit next. Behaviour is composed by wrapping handlers
 * (`filterPlatforms(childrenHandler, m)`), not switched on by flags.
 */
import type { Descriptor } from "../descriptor.ts";
import type { SkipReason } from "../status/events.ts";

/** What a handler may use while it runs. */
export interface WalkContext {
  /** Aborts when the walk is cancelled or another branch failed. */
  readonly signal: AbortSignal;
  /**
   * The bytes of a manifest or index from the source: size-capped, verified against the
   * descriptor, read once per walk.
   */
  content(desc: Descriptor): Promise<Uint8Array>;
  /** Report a child a handler deliberately drops (a status stream shows it as skipped). */
  skip(desc: Descriptor, reason: SkipReason): void;
}

/** Maps a descriptor to the descriptors to visit next (empty for a leaf). */
export type Handler = (desc: Descriptor, ctx: WalkContext) => Promise<Descriptor[]>;

/** Run handlers one after the other on the same descriptor and concatenate their children. */
export function handlers(...list: Handler[]): Handler {
  return async (desc, ctx) => {
    const out: Descriptor[] = [];
    for (const h of list) out.push(...(await h(desc, ctx)));
    return out;
  };
}

/**
 * Pick a handler by the descriptor's media type; descriptors of other types go to `fallback`
 * (default: no children).
 */
export function byMediaType(map: Record<string, Handler>, fallback?: Handler): Handler {
  return async (desc, ctx) => {
    const h = map[desc.mediaType] ?? fallback;
    return h ? h(desc, ctx) : [];
  };
}

/**
 * Keep only the children for which `keep` is true; the others are reported as skipped with
 * `reason` (default `"filtered"`).
 */
export function filterChildren(
  inner: Handler,
  keep: (child: Descriptor, parent: Descriptor) => boolean,
  reason: SkipReason = "filtered",
): Handler {
  return async (desc, ctx) => {
    const children = await inner(desc, ctx);
    const kept: Descriptor[] = [];
    for (const c of children) {
      if (keep(c, desc)) kept.push(c);
      else ctx.skip(c, reason);
    }
    return kept;
  };
}
