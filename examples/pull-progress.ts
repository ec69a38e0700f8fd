/**
 * Pull an image with one progress bar, drawn by cli-progress from ferry's status stream.
 *
 *   pnpm exec tsx examples/pull-progress.ts [REF] [--store DIR]
 *
 * Without REF a local registry is started and a generated image pulled from it. The store is
 * an OCI image layout (default `./.content`): skopeo, umoci and `ferry` read it.
 */
import { Presets, SingleBar } from "cli-progress";
import { filter } from "rxjs";
import { pull, type ProgressEvent, type TransferResult } from "@ferry/core";
import { createRegistryResolver } from "@ferry/fetcher";
import { openFsStore } from "@ferry/store-fs";
import { flag, isMain, positionals, withImage } from "./lib/setup.ts";

/** Pull `ref` into the OCI layout at `storeDir`; `signal` cancels (partial blobs stay resumable). */
export async function pullWithProgress(ref: string, storeDir: string, signal?: AbortSignal): Promise<TransferResult> {
  const resolver = createRegistryResolver();
  const store = await openFsStore(storeDir);
  const bar = new SingleBar({ format: "{bar} {percentage}% | {done} of {total_h} | {blobs} blobs | {rate}", hideCursor: true }, Presets.shades_classic);
  try {
    const op = pull(ref, { resolver, store, ...(signal ? { signal } : {}) });
    bar.start(1, 0, { done: "0 MiB", total_h: "?", blobs: "0/0", rate: "" });
    // `progress` events carry the operation totals, throttled (100 ms by default).
    op.status$.pipe(filter((e): e is ProgressEvent => e.type === "progress")).subscribe((e) => {
      bar.setTotal(Math.max(1, e.bytesTotal));
      bar.update(e.bytesDone, {
        done: `${(e.bytesDone / 2 ** 20).toFixed(1)} MiB`,
        total_h: `${(e.bytesTotal / 2 ** 20).toFixed(1)} MiB`,
        blobs: `${e.blobsDone}/${e.blobsTotal}`,
        rate: `${(e.rate / 1e6).toFixed(1)} MB/s`,
      });
    });
    return await op.done;
  } finally {
    bar.stop();
    await resolver.close();
  }
}

if (isMain(import.meta.url)) {
  const args = process.argv.slice(2);
  await withImage(positionals(args, ["--store"])[0], "example/pull:1", { layers: 3, layerSize: 4 * 2 ** 20 }, async (ref) => {
    const result = await pullWithProgress(ref, flag(args, "--store") ?? ".content");
    console.log(`pulled ${ref} ${result.root.digest}: ${result.totals.blobsDone} blobs, ${result.totals.bytesTransferred} bytes transferred`);
  });
}
