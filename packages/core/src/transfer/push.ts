import type { ContentStore } from "../content.ts";
import type { TransferOperation } from "../status/operation.ts";
import type { Resolver } from "../transport.ts";
import { transfer } from "./copy.ts";
import type { TransferOptions } from "./options.ts";

export interface PushImageOptions extends TransferOptions {
  /** Holds the content; `name` (default: `ref`) is looked up in its name store. */
  store: ContentStore;
  /** Name (or `@digest`) of the root in `store`. Default: `ref`. */
  name?: string;
  /** The destination: its `pusher(repository)` writes the blobs and manifests. */
  resolver: Resolver | ContentStore;
  /** Repository on the same registry to mount blobs from instead of uploading them. Default: none. */
  from?: string;
}

/**
 * Push the graph named `name` in `store` to `ref` (`host/repo:tag`): blobs first (mounted from
 * `from` when given, skipped when present), then manifests, children before parents, the tag
 * last. Every platform the store holds is pushed unless `platform` says otherwise.
 */
export function push(ref: string, options: PushImageOptions): TransferOperation {
  const { store, name, resolver, from, ...rest } = options;
  return transfer(name ?? ref, ref, { ...rest, from: store, to: resolver, ...(from !== undefined ? { mountFrom: from } : {}) }, "all");
}
