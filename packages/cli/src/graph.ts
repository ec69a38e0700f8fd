/** Small graph reads the fetch and prune commands need (manifests are capped and buffered). */
import {
  childrenOf,
  InvalidManifestError,
  isManifestLike,
  MaxManifestBytes,
  type Descriptor,
  type Digest,
  type Fetcher,
} from "@ferry/core";
import { Readable } from "node:stream";

/** Read a whole manifest-like blob (at most 4 MiB) from a fetcher; the fetcher verifies it. */
export async function readSmall(fetcher: Fetcher, desc: Descriptor, signal: AbortSignal): Promise<Uint8Array> {
  if (desc.size > MaxManifestBytes) {
    throw new InvalidManifestError(`${desc.digest} is ${desc.size} bytes, over the ${MaxManifestBytes}-byte manifest limit`);
  }
  const stream: Readable = await fetcher.fetch(desc, { signal });
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/**
 * Find the descriptor of `digest` in the graph under `root` (breadth first, manifests only are
 * read). Undefined when the graph does not hold it.
 */
export async function findInGraph(fetcher: Fetcher, root: Descriptor, digest: Digest, signal: AbortSignal): Promise<Descriptor | undefined> {
  const queue: Descriptor[] = [root];
  const seen = new Set<string>();
  while (queue.length > 0) {
    const d = queue.shift() as Descriptor;
    if (d.digest === digest) return d;
    if (seen.has(d.digest) || !isManifestLike(d.mediaType)) continue;
    seen.add(d.digest);
    const bytes = await readSmall(fetcher, d, signal);
    queue.push(...childrenOf(d, bytes));
  }
  return undefined;
}
