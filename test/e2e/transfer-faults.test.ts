import { describe, expect, it } from "vitest";
import { active, ingestRef, MaxManifestBytes, MediaTypes, MemoryStore, NetworkError, pull, type StatusEvent } from "./deps.ts";
import { collect, faultyResolver, present, put, syntheticImage, type FaultPlan } from "./fixtures.ts";

const platform = [{ os: "linux", architecture: "amd64" }];

/** Resolves once `pred` holds for an event of the operation. */
function when(op: { events: { on(n: "status", f: (e: StatusEvent) => void): unknown } }, pred: (e: StatusEvent) => boolean): Promise<void> {
  return new Promise((resolve) => op.events.on("status", (e) => pred(e) && resolve()));
}

describe("failure, cancellation and resume", () => {
  it("a failed blob fails the pull, cancels the rest, keeps finished blobs; a re-run moves only what is missing", async () => {
    const src = new MemoryStore();
    const img = await syntheticImage(src, { name: "x", platforms: platform, layers: 3, layerSize: 64 * 1024 });
    const [l0, l1, l2] = img.layers as [typeof img.layers[0], typeof img.layers[0], typeof img.layers[0]];
    const dst = new MemoryStore();

    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const boom = new NetworkError("connection reset by test");
    const plan: FaultPlan = {
      stall: new Map([[l0.digest, 20480]]),
      fail: new Map([[l1.digest, { after: 30000, error: boom, when: gate }]]),
    };
    const op = pull("x", { resolver: faultyResolver(src, plan), store: dst, platform: "all", throttleMs: 0 });
    const events = collect(op);
    // Fail l1 only once l2 and the config are committed and l0 holds its 20480 bytes.
    const seen = new Set<string>();
    op.events.on("status", (e) => {
      if (e.type === "done") seen.add(e.digest);
      if (e.type === "downloading" && e.digest === l0.digest && e.offset === 20480) seen.add("l0-partial");
      if (seen.has(l2.digest) && seen.has(img.configs[0]!.digest) && seen.has("l0-partial")) release();
    });
    await expect(op.done).rejects.toBe(boom);
    const list = await events;
    const err = list.find((e) => e.type === "error");
    expect(err).toMatchObject({ type: "error", ref: ingestRef(l1), code: "Network" });
    expect(list[list.length - 1]?.type).toBe("progress");

    const have = await present(dst, img.all);
    expect(have.has(l2.digest)).toBe(true);
    expect(have.has(img.configs[0]!.digest)).toBe(true);
    expect(have.has(l0.digest)).toBe(false);
    expect(have.has(l1.digest)).toBe(false);
    expect(have.has(img.manifests[0]!.digest)).toBe(false);
    expect(have.has(img.root.digest)).toBe(false);
    const partial = new Map((await active(dst)).map((s) => [s.digest, s.offset]));
    expect(partial.get(l0.digest)).toBe(20480);
    expect(partial.get(l1.digest)).toBe(30000);

    // Second run, no faults: only the missing bytes move, from the ingests' offsets.
    const calls: FaultPlan["calls"] = [];
    const op2 = pull("x", { resolver: faultyResolver(src, { calls }), store: dst, platform: "all" });
    const events2 = collect(op2);
    const r2 = await op2.done;
    const resumed = (await events2).filter((e) => e.type === "resumed");
    expect(resumed.map((e) => [e.digest, e.type === "resumed" && e.offset]).sort()).toEqual(
      [[l0.digest, 20480], [l1.digest, 30000]].sort(),
    );
    const metadata = img.manifests[0]!.size + img.root.size;
    expect(r2.totals.bytesTransferred).toBe(l0.size - 20480 + (l1.size - 30000) + metadata);
    expect(r2.totals.bytesDone).toBe(r2.totals.bytesTotal);
    expect(calls.filter((c) => c.digest === l2.digest)).toHaveLength(0);
    expect(calls.find((c) => c.digest === l0.digest)?.offset).toBe(20480);
    expect((await present(dst, img.all)).size).toBe(img.all.length);
    expect(await active(dst)).toEqual([]);
  });

  it("resumes by discarding when the source ignores the offset", async () => {
    const src = new MemoryStore();
    const img = await syntheticImage(src, { name: "x", platforms: platform, layers: 1, layerSize: 64 * 1024 });
    const l0 = img.layers[0]!;
    const dst = new MemoryStore();
    const ac = new AbortController();
    const op = pull("x", { resolver: faultyResolver(src, { stall: new Map([[l0.digest, 32768]]) }), store: dst, signal: ac.signal, throttleMs: 0 });
    op.events.on("downloading", (e) => e.digest === l0.digest && e.offset === 32768 && ac.abort());
    await expect(op.done).rejects.toMatchObject({ code: "Aborted" });
    expect((await active(dst)).find((s) => s.digest === l0.digest)?.offset).toBe(32768);
    // What the second run must move: every missing blob in full (the source cannot seek), except
    // an ingest that already holds every byte (interrupted just before its commit).
    const have = await present(dst, img.all);
    const partial = new Map((await active(dst)).map((s) => [s.digest as string, s.offset]));
    const expected = img.all
      .filter((d) => !have.has(d.digest) && partial.get(d.digest) !== d.size)
      .reduce((n, d) => n + d.size, 0);

    const op2 = pull("x", { resolver: faultyResolver(src, { ignoreRange: true }), store: dst });
    const events = collect(op2);
    const r = await op2.done;
    expect(r.totals.bytesTransferred).toBe(expected);
    expect(expected).toBeGreaterThanOrEqual(l0.size);
    expect((await events).find((e) => e.type === "resumed" && e.digest === l0.digest)).toMatchObject({ offset: 32768 });
    expect((await present(dst, img.all)).size).toBe(img.all.length);
  });

  it("cancellation through the signal or cancel() fails with Aborted and keeps partial ingests", async () => {
    const src = new MemoryStore();
    const img = await syntheticImage(src, { name: "x", platforms: platform, layers: 1, layerSize: 64 * 1024 });
    const l0 = img.layers[0]!;
    for (const how of ["signal", "cancel"] as const) {
      const dst = new MemoryStore();
      const ac = new AbortController();
      const op = pull("x", { resolver: faultyResolver(src, { stall: new Map([[l0.digest, 16384]]) }), store: dst, signal: ac.signal, throttleMs: 0 });
      const events = collect(op);
      op.events.on("downloading", (e) => {
        if (e.digest === l0.digest && e.offset === 16384) {
          if (how === "signal") ac.abort();
          else op.cancel();
        }
      });
      await expect(op.done).rejects.toMatchObject({ code: "Aborted" });
      const last = (await events).filter((e) => e.type === "error");
      expect(last).toHaveLength(1);
      expect(last[0]).toMatchObject({ code: "Aborted" });
      expect((await active(dst)).find((s) => s.digest === l0.digest)?.offset).toBe(16384);
    }
  });

  it("a manifest over the 4 MiB cap is refused before it is read", async () => {
    const src = new MemoryStore();
    const index = await put(
      src,
      MediaTypes.OciIndex,
      Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.OciIndex, manifests: [{ mediaType: MediaTypes.OciManifest, digest: `sha256:${"a".repeat(64)}`, size: MaxManifestBytes + 1 }] })),
    );
    await src.setName("huge", index);
    const calls: FaultPlan["calls"] = [];
    const op = pull("huge", { resolver: faultyResolver(src, { calls }), store: new MemoryStore(), platform: "all" });
    const events = collect(op);
    await expect(op.done).rejects.toMatchObject({ code: "InvalidManifest", details: { size: MaxManifestBytes + 1 } });
    expect((await events).find((e) => e.type === "error")).toMatchObject({ ref: `manifest-sha256:${"a".repeat(64)}` });
    expect(calls.map((c) => c.digest)).toEqual([index.digest]);
  });

  it("an invalid manifest fails the pull with InvalidManifest naming it", async () => {
    const src = new MemoryStore();
    const bad = await put(src, MediaTypes.OciManifest, Buffer.from(JSON.stringify({ schemaVersion: 2, layers: "nope" })));
    const index = await put(src, MediaTypes.OciIndex, Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.OciIndex, manifests: [{ mediaType: bad.mediaType, digest: bad.digest, size: bad.size }] })));
    await src.setName("bad", index);
    const op = pull("bad", { resolver: src, store: new MemoryStore(), platform: "all" });
    const events = collect(op);
    await expect(op.done).rejects.toMatchObject({ code: "InvalidManifest" });
    expect((await events).find((e) => e.type === "error")).toMatchObject({ ref: `manifest-${bad.digest}`, code: "InvalidManifest" });
  });
});
