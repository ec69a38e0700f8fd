/**
 * Copy an image (every platform) from one registry to another with `copy`, printing what
 * happens to each blob. A second copy finds everything in place and moves nothing.
 *
 *   pnpm exec tsx examples/copy-registries.ts [SRC DST]
 *
 * Without arguments two local registries are started and a generated image copied between them.
 */
import { copy, type StatusEvent, type TransferResult } from "@ferry/core";
import { createRegistryResolver } from "@ferry/fetcher";
import { isMain, positionals, seedImage, startLocalRegistry } from "./lib/setup.ts";

export async function copyImage(
  src: string,
  dst: string,
  log: (line: string) => void = console.log,
  signal?: AbortSignal,
): Promise<TransferResult> {
  // One resolver serves both sides: it keeps a connection pool per registry host.
  const resolver = createRegistryResolver();
  try {
    const op = copy(src, dst, { from: resolver, to: resolver, ...(signal ? { signal } : {}) });
    op.events.on("status", (e: StatusEvent) => {
      if (e.type === "done" || e.type === "exists" || e.type === "mounted") log(`${e.type.padEnd(7)} ${e.kind.padEnd(8)} ${e.digest} ${e.total} B`);
      if (e.type === "tagged") log(`tagged  ${e.name}`);
    });
    return await op.done;
  } finally {
    await resolver.close();
  }
}

if (isMain(import.meta.url)) {
  let [src, dst] = positionals(process.argv.slice(2));
  const a = src === undefined ? await startLocalRegistry() : undefined;
  const b = src === undefined ? await startLocalRegistry() : undefined;
  try {
    if (a && b) {
      src = (await seedImage(a.host, "example/src:1", { platforms: ["linux/amd64", "linux/arm64"], layers: 2, layerSize: 2 ** 20 })).reference;
      dst = `${b.host}/example/dst:1`;
    }
    const first = await copyImage(src as string, dst as string);
    console.log(`copied ${src} -> ${dst} ${first.root.digest}: ${first.totals.bytesTransferred} bytes moved`);
    const again = await copyImage(src as string, dst as string);
    console.log(`again: ${again.totals.bytesTransferred} bytes moved, ${again.totals.blobsExisting} already there`);
  } finally {
    await a?.close();
    await b?.close();
  }
}
