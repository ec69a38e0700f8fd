/**
 * Read blobs into memory you own: `fetch` a layer and call `readInto(buffer)` in a loop. One
 * buffer serves every layer (no chunk is allocated per network read), and layers of at least
 * `socketReadMinBytes` (8 MiB) from a plain-HTTP registry are read by the kernel straight into it.
 * The stream verifies the digest itself: the last `readInto` (the one that returns 0) fails with
 * `DigestMismatch` if the bytes are wrong. Here each layer is also hashed, to show the bytes.
 *
 *   pnpm exec tsx examples/read-into.ts [REF] [--buffer KiB]
 *
 * Without REF a local registry is started and a generated image (2 layers of 12 MiB) read from it.
 */
import { createHash } from "node:crypto";
import { InvalidArgumentError, parseManifest } from "@ferry/core";
import { createRegistryResolver, parseReference } from "@ferry/fetcher";
import { flag, isMain, positionals, withImage } from "./lib/setup.ts";

export interface LayerScan {
  digest: string;
  size: number;
  /** `readInto` calls that returned bytes. */
  reads: number;
  /** sha256 of the bytes read, as a digest string (equals `digest` for sha256 layers). */
  sha256: string;
}

/** Read every layer of `ref` (the first manifest of an index) through one reused buffer. */
export async function scanLayers(ref: string, bufferBytes = 1 << 20, signal?: AbortSignal): Promise<LayerScan[]> {
  if (!Number.isSafeInteger(bufferBytes) || bufferBytes <= 0) throw new InvalidArgumentError(`buffer size must be a positive integer, got ${bufferBytes}`);
  const resolver = createRegistryResolver();
  try {
    let doc = parseManifest((await resolver.fetchManifest(ref, { signal })).data);
    if (doc.kind === "index") {
      const first = doc.index.manifests[0];
      if (first === undefined) throw new InvalidArgumentError(`${ref} is an empty index`);
      doc = parseManifest((await resolver.fetchManifest(`${parseReference(ref).name}@${first.digest}`, { signal })).data);
    }
    if (doc.kind !== "manifest") throw new InvalidArgumentError(`${ref} is not an image`);
    const fetcher = await resolver.fetcher(ref);
    const buffer = new Uint8Array(bufferBytes);
    const out: LayerScan[] = [];
    for (const layer of doc.manifest.layers) {
      const stream = await fetcher.fetch(layer, { signal });
      const hash = createHash("sha256");
      let reads = 0;
      try {
        // Registry streams always have readInto; any other Fetcher may not.
        if (stream.readInto === undefined) throw new InvalidArgumentError("this fetcher's streams cannot fill a buffer");
        for (let n = await stream.readInto(buffer); n > 0; n = await stream.readInto(buffer)) {
          hash.update(buffer.subarray(0, n));
          reads++;
        }
      } finally {
        stream.destroy();
      }
      out.push({ digest: layer.digest, size: layer.size, reads, sha256: `sha256:${hash.digest("hex")}` });
    }
    return out;
  } finally {
    await resolver.close();
  }
}

if (isMain(import.meta.url)) {
  const args = process.argv.slice(2);
  const kib = Number(flag(args, "--buffer") ?? 1024);
  const seed = { layers: 2, layerSize: 12 * 2 ** 20 };
  await withImage(positionals(args, ["--buffer"])[0], "example/read-into:1", seed, async (ref) => {
    for (const l of await scanLayers(ref, kib * 1024)) {
      console.log(`${l.digest} ${l.size} bytes in ${l.reads} reads into one ${kib} KiB buffer, ${l.sha256 === l.digest ? "verified" : `hash ${l.sha256}`}`);
    }
  });
}
