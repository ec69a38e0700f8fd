import { describe, expect, it } from "vitest";
import { LocalResolver, MemoryStore, pull, type Resolver, type RetryInfo, type StatusEvent, type TransferHooks } from "./deps.ts";
import { collect, faultyResolver, syntheticImage } from "./fixtures.ts";

const platform = [{ os: "linux", architecture: "amd64" }];

function perRef(events: StatusEvent[]): Map<string, StatusEvent[]> {
  const m = new Map<string, StatusEvent[]>();
  for (const e of events) {
    if (!("ref" in e) || e.ref === undefined || e.type === "retrying") continue;
    m.set(e.ref, [...(m.get(e.ref) ?? []), e]);
  }
  return m;
}

describe("status stream", () => {
  it("replays the latest state per ref to a late subscriber, not the history", async () => {
    const src = new MemoryStore();
    const img = await syntheticImage(src, { name: "x", platforms: platform, layers: 2, layerSize: 64 * 1024 });
    const l0 = img.layers[0]!;
    const ac = new AbortController();
    const op = pull("x", { resolver: faultyResolver(src, { stall: new Map([[l0.digest, 16384]]) }), store: new MemoryStore(), signal: ac.signal, throttleMs: 0 });
    const early = collect(op);

    // Mid-flight: subscribe once l0 is stuck at 16384 and the other blobs are done.
    const midway = new Promise<StatusEvent[]>((resolve) => {
      let l0At = false;
      let others = 0;
      op.events.on("status", (e) => {
        if (e.type === "downloading" && e.digest === l0.digest && e.offset === 16384) l0At = true;
        if (e.type === "done") others++;
        if (l0At && others === 2) {
          const got: StatusEvent[] = [];
          const sub = op.status$.subscribe((x) => got.push(x));
          sub.unsubscribe();
          resolve(got);
        }
      });
    });
    const replay = await midway;
    ac.abort();
    await expect(op.done).rejects.toMatchObject({ code: "Aborted" });

    const byRef = perRef(replay);
    // One event per ref: the latest.
    for (const [, list] of byRef) expect(list).toHaveLength(1);
    expect(byRef.get(`layer-${l0.digest}`)?.[0]).toMatchObject({ type: "downloading", offset: 16384 });
    expect(byRef.get(`layer-${img.layers[1]!.digest}`)?.[0]?.type).toBe("done");
    expect(byRef.get(`config-${img.configs[0]!.digest}`)?.[0]?.type).toBe("done");
    expect(byRef.get(`index-${img.root.digest}`)?.[0]?.type).toBe("waiting");
    expect(replay[0]?.type).toBe("resolved");
    expect(replay.filter((e) => e.type === "progress")).toHaveLength(1);
    expect(replay.length).toBeLessThan((await early).length);

    // After the end: the final state, then the same error.
    const after: StatusEvent[] = [];
    const err = await new Promise<unknown>((resolve) => op.status$.subscribe({ next: (e) => after.push(e), error: resolve }));
    expect(err).toMatchObject({ code: "Aborted" });
    expect(after.some((e) => e.type === "error")).toBe(true);
  });

  it("a subscriber after success gets each ref's final event, then completion", async () => {
    const src = new MemoryStore();
    const img = await syntheticImage(src, { name: "x" });
    const op = pull("x", { resolver: src, store: new MemoryStore(), platform: "all" });
    const r = await op.done;
    const got = await collect(op);
    const byRef = perRef(got);
    expect(byRef.size).toBe(img.all.length);
    for (const [, list] of byRef) expect(list.map((e) => e.type)).toEqual(["done"]);
    const last = got[got.length - 1];
    expect(last).toMatchObject({ type: "progress", bytesDone: r.totals.bytesTotal, blobsDone: img.all.length, etaMs: 0 });
    expect(got.some((e) => e.type === "tagged")).toBe(true);
  });

  it("throttles progress per ref but always delivers the final events", async () => {
    const src = new MemoryStore();
    const img = await syntheticImage(src, { name: "x", platforms: platform, layers: 3, layerSize: 256 * 1024 });
    // 1 KiB chunks: 256 writes per layer, all inside one throttle window.
    const op = pull("x", { resolver: faultyResolver(src, { chunk: 1024 }), store: new MemoryStore(), throttleMs: 60_000 });
    const events = await collect(op);
    await op.done;
    for (const l of img.layers) {
      const mine = events.filter((e) => "digest" in e && e.digest === l.digest);
      const moving = mine.filter((e) => e.type === "downloading");
      // The first one goes out at once; the one held back is flushed before committing.
      expect(moving.length).toBeLessThanOrEqual(2);
      expect(moving[moving.length - 1]).toMatchObject({ offset: l.size, transferred: l.size });
      expect(mine.map((e) => e.type).slice(-2)).toEqual(["committing", "done"]);
    }
    const progress = events.filter((e) => e.type === "progress");
    expect(progress[progress.length - 1]).toMatchObject({ bytesDone: img.all.reduce((n, d) => n + d.size, 0) });
    expect(progress.length).toBeLessThanOrEqual(3);
  });

  it("says committing only once every byte is in the destination", async () => {
    const src = new MemoryStore();
    const img = await syntheticImage(src, { name: "x", platforms: platform, layers: 1, layerSize: 4 * 1024 * 1024 });
    const dst = new MemoryStore();
    const op = pull("x", { resolver: src, store: dst, throttleMs: 0 });
    const held: number[] = [];
    const layer = img.layers[0]!;
    op.events.on("committing", (e) => {
      // What the destination's ingest holds at that moment (the memory store answers at the call).
      if (e.digest === layer.digest) void dst.listStatuses({ refPrefix: e.ref }).then(([st]) => held.push(st?.offset ?? -1));
    });
    const events = await collect(op);
    await op.done;
    const mine = events.filter((e) => "digest" in e && e.digest === layer.digest);
    const types = mine.map((e) => e.type);
    const lastMove = mine.filter((e) => e.type === "downloading").at(-1);
    expect(lastMove).toMatchObject({ offset: layer.size });
    expect(types.lastIndexOf("downloading")).toBeLessThan(types.indexOf("committing"));
    expect(held).toEqual([layer.size]);
  });

  it("reports the transport's retries while resolving (operation-wide) and while reading a manifest (naming it)", async () => {
    const src = new MemoryStore();
    const img = await syntheticImage(src, { name: "x", platforms: platform });
    const local = new LocalResolver(src);
    const manifest = img.manifests[0]!;
    const retry: RetryInfo = { attempt: 2, delayMs: 5, reason: "HTTP 503", status: 503 };
    // A transport that had to retry once, as the registry resolver does on a 503.
    const resolver: Resolver = {
      async resolve(ref, options) {
        (options as TransferHooks | undefined)?.onRetry?.(retry);
        return local.resolve(ref, options);
      },
      async fetcher(name) {
        const inner = await local.fetcher(name);
        return {
          fetch(d, options) {
            if (d.digest === manifest.digest) options?.onRetry?.({ ...retry, reason: "connection reset" });
            return inner.fetch(d, options);
          },
        };
      },
    };
    const op = pull("x", { resolver, store: new MemoryStore() });
    const events = collect(op);
    await op.done;
    const list = await events;
    const types = list.map((e) => e.type);
    const retries = list.filter((e) => e.type === "retrying");
    expect(retries).toHaveLength(2);
    expect(retries[0]).toMatchObject({ reason: "HTTP 503", status: 503, attempt: 2, delayMs: 5 });
    expect(retries[0]).not.toHaveProperty("ref");
    expect(types.indexOf("retrying")).toBeGreaterThan(types.indexOf("resolving"));
    expect(types.indexOf("retrying")).toBeLessThan(types.indexOf("resolved"));
    expect(retries[1]).toMatchObject({ reason: "connection reset", ref: `manifest-${manifest.digest}`, digest: manifest.digest });
  });

  it("is multicast: two subscribers see the same events of one run (resolved once)", async () => {
    const src = new MemoryStore();
    await syntheticImage(src, { name: "x", platforms: platform });
    const local = new LocalResolver(src);
    let resolves = 0;
    const resolver: Resolver = { resolve: (r, o) => (resolves++, local.resolve(r, o)), fetcher: (n) => local.fetcher(n) };
    const op = pull("x", { resolver, store: new MemoryStore(), throttleMs: 0 });
    const [a, b] = await Promise.all([collect(op), collect(op), op.done]);
    expect(resolves).toBe(1);
    expect(a.length).toBeGreaterThan(5);
    expect(b).toEqual(a);
  });

  it("emits on the event emitter under the type, under status, and end", async () => {
    const src = new MemoryStore();
    await syntheticImage(src, { name: "x", platforms: platform });
    const op = pull("x", { resolver: src, store: new MemoryStore() });
    const byType: string[] = [];
    const all: string[] = [];
    let ended = 0;
    op.events.on("done", (e) => byType.push(e.digest));
    op.events.on("status", (e) => all.push(e.type));
    op.events.on("end", (r) => (ended = r.totals.blobsDone));
    const r = await op.done;
    expect(byType).toHaveLength(r.totals.blobsDone);
    expect(all.filter((t) => t === "done")).toHaveLength(r.totals.blobsDone);
    expect(ended).toBe(r.totals.blobsDone);
  });
});
