import type { ContentStore } from "../content.ts";
import { defaultPlatform } from "../platform.ts";
import type { TransferOperation } from "../status/operation.ts";
import type { Resolver } from "../transport.ts";
import { transfer } from "./copy.ts";
import type { TransferOptions } from "./options.ts";

export interface PullOptions extends TransferOptions {
  /** Resolves `ref` and reads the content: a registry resolver, or another content store. */
  resolver: Resolver | ContentStore;
  /** Where the content goes. */
  store: ContentStore;
  /**
   * Name recorded for the root in the store's name store (for an OCI layout, the
   * `org.opencontainers.image.ref.name` of its `index.json` entry). `false` records none.
   * Default: `ref` as given.
   */
  name?: string | false;
}

/**
 * Pull `ref` into `store`: resolve, walk (by default only the host's platform of an index),
 * download every missing blob (resuming partial ingests), commit children before parents, then
 * record the root under `name`. Re-running an interrupted pull transfers only what is missing.
 */
export function pull(ref: string, options: PullOptions): TransferOperation {
  const { resolver, store, name, ...rest } = options;
  return transfer(
    ref,
    name === false || name === undefined ? ref : name,
    { ...rest, from: resolver, to: store, untagged: name === false },
    defaultPlatform(),
  );
}
