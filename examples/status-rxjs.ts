/**
 * Consume a pull's `status$` with RxJS operators: a throttled percentage line, bytes and blobs
 * per kind (groupBy + reduce), the blobs that actually moved bytes (distinct + count), and the
 * resolved root (first). Every pipeline subscribes before the operation starts, on the same
 * multicast stream.
 *
 *   pnpm exec tsx examples/status-rxjs.ts [REF]
 *
 * Without REF a local registry is started and a generated image pulled from it (into memory).
 */
import { count, distinct, filter, firstValueFrom, groupBy, lastValueFrom, map, mergeMap, reduce, tap, throttleTime, toArray } from "rxjs";
import { isBlobEvent, pull, type BlobKind, type DoneEvent, type DownloadingEvent, type ProgressEvent, type ResolvedEvent, type StatusEvent } from "@ferry/core";
import { createRegistryResolver } from "@ferry/fetcher";
import { createMemoryStore } from "@ferry/store-memory";
import { isMain, positionals, withImage } from "./lib/setup.ts";

export interface KindSummary {
  kind: BlobKind;
  blobs: number;
  bytes: number;
}

export interface StatusSummary {
  root: string;
  perKind: KindSummary[];
  /** Blobs that had at least one `downloading` event. */
  moved: number;
  /** Throttled percentages seen while pulling. */
  percentages: number[];
}

export async function summarisePull(ref: string, onLine: (line: string) => void = console.log, signal?: AbortSignal): Promise<StatusSummary> {
  const resolver = createRegistryResolver();
  try {
    const op = pull(ref, { resolver, store: createMemoryStore(), platform: "all", ...(signal ? { signal } : {}) });
    const status$ = op.status$;

    const root = firstValueFrom(status$.pipe(filter((e): e is ResolvedEvent => e.type === "resolved"), map((e) => e.descriptor.digest)));

    // At most one line per 200 ms; `trailing` delivers the final 100 % when the stream completes.
    const percentages = lastValueFrom(
      status$.pipe(
        filter((e): e is ProgressEvent => e.type === "progress" && e.bytesTotal > 0),
        throttleTime(200, undefined, { leading: true, trailing: true }),
        map((e) => Math.floor((100 * e.bytesDone) / e.bytesTotal)),
        tap((pct) => onLine(`${pct}%`)),
        toArray(),
      ),
    );

    const perKind = lastValueFrom(
      status$.pipe(
        filter((e): e is DoneEvent => e.type === "done"),
        groupBy((e) => e.kind),
        mergeMap((group) => group.pipe(reduce((acc, e) => ({ ...acc, blobs: acc.blobs + 1, bytes: acc.bytes + e.total }), { kind: group.key, blobs: 0, bytes: 0 } as KindSummary))),
        toArray(),
      ),
    );

    const moved = lastValueFrom(
      status$.pipe(
        filter((e: StatusEvent): e is DownloadingEvent => isBlobEvent(e) && e.type === "downloading"),
        distinct((e) => e.ref),
        count(),
      ),
    );

    await op.done;
    return {
      root: await root,
      perKind: (await perKind).sort((a, b) => a.kind.localeCompare(b.kind)),
      moved: await moved,
      percentages: await percentages,
    };
  } finally {
    await resolver.close();
  }
}

if (isMain(import.meta.url)) {
  const seed = { platforms: ["linux/amd64", "linux/arm64"], layers: 3, layerSize: 2 ** 20 };
  await withImage(positionals(process.argv.slice(2))[0], "example/rx:1", seed, async (ref) => {
    const s = await summarisePull(ref);
    console.log(`root ${s.root}`);
    for (const k of s.perKind) console.log(`${k.kind.padEnd(8)} ${String(k.blobs).padStart(3)} blobs ${String(k.bytes).padStart(10)} bytes`);
    console.log(`${s.moved} blobs moved bytes`);
  });
}
