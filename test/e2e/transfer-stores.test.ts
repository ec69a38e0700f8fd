import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { active, type ContentStore, copy, type Descriptor, LocalResolver, MediaTypes, MemoryStore, NotFoundError, openFsStore, type Platform, pull, push, readBlob, type Resolver, type StatusEvent } from "./deps.ts";
import { artifact, collect, faultyResolver, present, put, syntheticImage, tempDirs } from "./fixtures.ts";

const tempDir = tempDirs("ferry-transfer-");

describe("copy between stores", () => {
  it("copies memory → fs → memory with every blob and the name", async () => {
    const a = new MemoryStore();
    const img = await syntheticImage(a, { name: "demo:1" });
    const dir = await tempDir();
    const b = await openFsStore(dir);

    const op1 = copy("demo:1", "demo:1", { from: a, to: b });
    const events = collect(op1);
    const r1 = await op1.done;
    expect(r1.root.digest).toBe(img.root.digest);
    expect(r1.totals.blobsDone).toBe(img.all.length);
    expect(r1.totals.bytesTotal).toBe(img.all.reduce((n, d) => n + d.size, 0));
    expect(r1.totals.bytesTransferred).toBe(r1.totals.bytesTotal);
    expect((await present(b, img.all)).size).toBe(img.all.length);
    // The layout's index.json names the root.
    const index = JSON.parse(await readFile(join(dir, "index.json"), "utf8")) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> };
    expect(index.manifests.find((m) => m.digest === img.root.digest)?.annotations?.["org.opencontainers.image.ref.name"]).toBe("demo:1");
    const list = await events;
    expect(list.filter((e) => e.type === "done")).toHaveLength(img.all.length);
    expect(list.some((e) => e.type === "tagged" && e.name === "demo:1")).toBe(true);

    const c = new MemoryStore();
    const r2 = await copy("demo:1", "other", { from: b, to: c }).done;
    expect(r2.root.digest).toBe(img.root.digest);
    expect((await present(c, img.all)).size).toBe(img.all.length);
    expect((await c.getName("other")).digest).toBe(img.root.digest);
    for (const d of img.all) {
      if (d.size < 4 * 1024 * 1024) expect(Buffer.from(await readBlob(c, d)).equals(Buffer.from(img.bytes.get(d.digest) as Uint8Array))).toBe(true);
    }
  });

  it("moves parents only after their children", async () => {
    const a = new MemoryStore();
    const img = await syntheticImage(a, { name: "x" });
    const order: string[] = [];
    const op = copy("x", "x", { from: a, to: new MemoryStore(), concurrency: 3 });
    op.events.on("done", (e) => order.push(e.digest));
    await op.done;
    expect(order[order.length - 1]).toBe(img.root.digest);
    img.manifests.forEach((m, i) => {
      const at = order.indexOf(m.digest);
      expect(at).toBeGreaterThan(order.indexOf(img.configs[i]!.digest));
    });
  });

  it("deduplicates blobs shared by several manifests", async () => {
    const a = new MemoryStore();
    const img = await syntheticImage(a, { name: "x", sharedLayer: true, platforms: [
      { os: "linux", architecture: "amd64" },
      { os: "linux", architecture: "arm64" },
      { os: "linux", architecture: "s390x" },
    ] });
    const fetched: string[] = [];
    const op = copy("x", "x", { from: a, to: new MemoryStore() });
    const events: StatusEvent[] = [];
    op.events.on("status", (e) => events.push(e));
    await op.done;
    for (const e of events) if (e.type === "waiting") fetched.push(e.digest);
    const shared = img.layers[0]!.digest;
    expect(fetched.filter((d) => d === shared)).toHaveLength(1);
    expect(events.filter((e) => e.type === "done" && e.digest === shared)).toHaveLength(1);
    expect(new Set(fetched).size).toBe(fetched.length);
  });

  it("pulls one platform (best match) or all of them", async () => {
    const a = new MemoryStore();
    const img = await syntheticImage(a, { name: "x" });
    const one = new MemoryStore();
    const op = pull("x", { resolver: a, store: one, platform: "linux/arm64" });
    const skipped: string[] = [];
    op.events.on("skipped", (e) => skipped.push(`${e.reason}:${e.digest}`));
    await op.done;
    const have = await present(one, img.all);
    expect(have.has(img.manifests[1]!.digest)).toBe(true);
    expect(have.has(img.manifests[0]!.digest)).toBe(false);
    expect(have.has(img.configs[0]!.digest)).toBe(false);
    expect(skipped).toEqual([`platform:${img.manifests[0]!.digest}`]);
    // The index itself is the root and is named, as containerd does.
    expect((await one.getName("x")).digest).toBe(img.root.digest);

    // A preference list with a limit of 1 picks the first preference that exists.
    const pref = new MemoryStore();
    await pull("x", { resolver: a, store: pref, platform: ["linux/ppc64le", "linux/amd64", "linux/arm64"] }).done;
    const p = await present(pref, img.manifests);
    expect([...p]).toEqual([img.manifests[0]!.digest]);

    // A second pull of another platform into the same store adds it, though the index exists.
    await pull("x", { resolver: a, store: one, platform: "linux/amd64" }).done;
    expect((await present(one, img.all)).size).toBe(img.all.length);

    const all = new MemoryStore();
    await pull("x", { resolver: a, store: all, platform: "all" }).done;
    expect((await present(all, img.all)).size).toBe(img.all.length);

    // A custom matcher with its own preference order (arm64 before amd64), and a bare predicate.
    const custom = new MemoryStore();
    const prefer = ["arm64", "amd64"];
    await pull("x", {
      resolver: a,
      store: custom,
      platform: { match: (p: Platform) => prefer.includes(p.architecture), less: (x: Platform, y: Platform) => prefer.indexOf(x.architecture) < prefer.indexOf(y.architecture) },
    }).done;
    expect([...(await present(custom, img.manifests))]).toEqual([img.manifests[1]!.digest]);
    const predicate = new MemoryStore();
    await pull("x", { resolver: a, store: predicate, platform: (p) => p.architecture === "amd64" }).done;
    expect([...(await present(predicate, img.manifests))]).toEqual([img.manifests[0]!.digest]);
  });

  it("skips a sub-graph the destination already has", async () => {
    const a = new MemoryStore();
    const img = await syntheticImage(a, { name: "x" });
    const b = new MemoryStore();
    await copy("x", "x", { from: a, to: b }).done;
    const op = copy("x", "y", { from: a, to: b });
    const types: string[] = [];
    op.events.on("status", (e) => types.push(e.type));
    const r = await op.done;
    expect(r.totals.bytesTransferred).toBe(0);
    // The index and its manifests were looked at (an index may have been written by a
    // single-platform pull), nothing below them.
    expect(r.totals.blobsTotal).toBe(1 + img.manifests.length);
    expect(types).toContain("exists");
    expect(types).not.toContain("downloading");
    expect((await b.getName("y")).digest).toBe(img.root.digest);
  });

  it("skips a foreign (non-distributable) layer unless nonDistributable is set", async () => {
    const a = new MemoryStore();
    const foreign = await put(a, MediaTypes.DockerLayerForeignGzip, Buffer.from("windows base layer"));
    const config = await put(a, MediaTypes.OciConfig, Buffer.from(JSON.stringify({ os: "windows", architecture: "amd64", rootfs: { type: "layers", diff_ids: [] } })));
    const doc = {
      schemaVersion: 2,
      mediaType: MediaTypes.OciManifest,
      config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
      layers: [{ mediaType: foreign.mediaType, digest: foreign.digest, size: foreign.size, urls: ["https://example.invalid/layer"] }],
    };
    const m = await put(a, MediaTypes.OciManifest, Buffer.from(JSON.stringify(doc)));
    await a.setName("win", m);
    const b = new MemoryStore();
    const op = copy("win", "win", { from: a, to: b });
    const skipped: string[] = [];
    op.events.on("skipped", (e) => skipped.push(`${e.reason}:${e.digest}`));
    const r = await op.done;
    expect(skipped).toEqual([`nondistributable:${foreign.digest}`]);
    expect([...(await present(b, [m, config, foreign]))].sort()).toEqual([m.digest, config.digest].sort());
    expect(r.totals.blobsTotal).toBe(2);
    const c = new MemoryStore();
    await copy("win", "win", { from: a, to: c, nonDistributable: true }).done;
    expect((await present(c, [m, config, foreign])).size).toBe(3);
    // The manifest the first copy wrote without its foreign layer does not stand for a complete
    // sub-graph: a copy asking for foreign layers goes in and fetches it.
    await copy("win", "win", { from: a, to: b, nonDistributable: true }).done;
    expect((await present(b, [m, config, foreign])).size).toBe(3);
  });

  it.each([Number.NaN, Number.POSITIVE_INFINITY, -1])("refuses throttleMs %s (InvalidArgument), moving nothing", async (throttleMs) => {
    const a = new MemoryStore();
    const img = await syntheticImage(a, { name: "x" });
    const b = new MemoryStore();
    await expect(pull("x", { resolver: a, store: b, throttleMs }).done).rejects.toMatchObject({ code: "InvalidArgument" });
    expect((await present(b, img.all)).size).toBe(0);
  });

  it("fails with NotFound, naming the index's platforms, when none matches, and names nothing", async () => {
    const a = new MemoryStore();
    const img = await syntheticImage(a, { name: "x" });
    const b = new MemoryStore();
    const err = await pull("x", { resolver: a, store: b, platform: "linux/riscv64" }).done.catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "NotFound", details: { digest: img.root.digest, platforms: ["linux/amd64", "linux/arm64/v8"] } });
    await expect(b.getName("x")).rejects.toMatchObject({ code: "NotFound" });
    expect((await present(b, img.all)).size).toBe(0);
  });

  it("reads the root index once: the checks before the walk hand it on", async () => {
    const a = new MemoryStore();
    const img = await syntheticImage(a, { name: "x" });
    const calls: Array<{ digest: string; offset: number }> = [];
    await pull("x", { resolver: faultyResolver(a, { calls }), store: new MemoryStore(), platform: "linux/arm64" }).done;
    expect(calls.filter((c) => c.digest === img.root.digest)).toHaveLength(1);
  });

  it("decides a platform match over the whole graph: an index of per-platform indexes pulls the one that matches", async () => {
    const a = new MemoryStore();
    const img = await syntheticImage(a, { name: "x" });
    // The root lists one index per platform, none of which carries a platform itself.
    const listed = (JSON.parse(Buffer.from(await readBlob(a, img.root)).toString("utf8")) as { manifests: Descriptor[] }).manifests;
    const perPlatform = [];
    for (const m of listed) perPlatform.push(await put(a, MediaTypes.OciIndex, Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.OciIndex, manifests: [m] }))));
    const root = await put(a, MediaTypes.OciIndex, Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.OciIndex, manifests: perPlatform })));
    await a.setName("nested", root);
    const b = new MemoryStore();
    await pull("nested", { resolver: a, store: b, platform: "linux/arm64" }).done;
    const have = await present(b, img.manifests);
    expect([...have]).toEqual([img.manifests[1]!.digest]);
    await expect(pull("nested", { resolver: a, store: new MemoryStore(), platform: "linux/riscv64" }).done).rejects.toMatchObject({ code: "NotFound" });
  });

  it("pushes a store's graph to another store with push()", async () => {
    const a = new MemoryStore();
    const img = await syntheticImage(a, { name: "local" });
    const b = new MemoryStore();
    const r = await push("remote", { store: a, name: "local", resolver: b }).done;
    expect(r.root.digest).toBe(img.root.digest);
    expect((await present(b, img.all)).size).toBe(img.all.length);
  });
});

/** A store behind a plain resolver object: the orchestration treats it like a registry (no LocalResolver). */
function asRemote(store: MemoryStore): Resolver {
  const local = new LocalResolver(store);
  return { resolve: (r, o) => local.resolve(r, o), fetcher: (n) => local.fetcher(n), pusher: (n) => local.pusher(n) };
}

describe("pushing an index to a registry-like destination", () => {
  const three = [
    { os: "linux", architecture: "amd64" },
    { os: "linux", architecture: "arm64" },
    { os: "linux", architecture: "s390x" },
  ];

  it("pushes one selected platform's manifest alone, as the root, under the tag", async () => {
    const a = new MemoryStore();
    const img = await syntheticImage(a, { name: "x", platforms: three });
    const b = new MemoryStore();
    const op = push("remote:1", { store: a, name: "x", resolver: asRemote(b), platform: "linux/s390x" });
    const events = collect(op);
    const r = await op.done;
    expect(r.root.digest).toBe(img.manifests[2]!.digest);
    expect((await b.getName("1")).digest).toBe(img.manifests[2]!.digest);
    const have = await present(b, img.all);
    expect([...have].sort()).toEqual([img.manifests[2]!, img.configs[2]!, ...img.layers.slice(4, 6)].map((d) => d.digest).sort());
    expect((await events).find((e) => e.type === "skipped" && e.digest === img.root.digest)).toMatchObject({ reason: "platform" });
  });

  it("does not count an entry without a platform as a platform chosen", async () => {
    const a = new MemoryStore();
    const img = await syntheticImage(a, { name: "x", platforms: three });
    // An attestation-like entry with no platform beside the three images.
    const extra = await put(a, MediaTypes.OciManifest, Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.OciManifest, config: img.configs[0], layers: [] })));
    const index = JSON.parse(Buffer.from(await readBlob(a, img.root)).toString("utf8")) as { manifests: Descriptor[] };
    index.manifests.push({ mediaType: extra.mediaType, digest: extra.digest, size: extra.size });
    const root = await put(a, MediaTypes.OciIndex, Buffer.from(JSON.stringify(index)));
    await a.setName("y", root);
    const b = new MemoryStore();
    const r = await push("remote:1", { store: a, name: "y", resolver: asRemote(b), platform: "linux/s390x" }).done;
    expect(r.root.digest).toBe(img.manifests[2]!.digest);
    const none = push("remote:2", { store: a, name: "y", resolver: asRemote(b), platform: "linux/riscv64" });
    await expect(none.done).rejects.toMatchObject({ code: "NotFound" });
    await expect(b.getName("2")).rejects.toMatchObject({ code: "NotFound" });
  });

  it("refuses a selection of some but not all platforms, and an empty one, before moving anything", async () => {
    const a = new MemoryStore();
    const img = await syntheticImage(a, { name: "x", platforms: three });
    const b = new MemoryStore();
    const two = push("remote:1", { store: a, name: "x", resolver: asRemote(b), platform: ["linux/amd64", "linux/arm64"], platformLimit: 0 });
    await expect(two.done).rejects.toMatchObject({ code: "InvalidArgument", details: { kept: ["linux/amd64", "linux/arm64"] } });
    const none = push("remote:1", { store: a, name: "x", resolver: asRemote(b), platform: "windows/amd64" });
    await expect(none.done).rejects.toMatchObject({ code: "NotFound" });
    expect((await present(b, img.all)).size).toBe(0);
    // Every platform selected explicitly is the whole index: pushed as is.
    const all = await push("remote:1", { store: a, name: "x", resolver: asRemote(b), platform: three.map((p) => `${p.os}/${p.architecture}`), platformLimit: 0 }).done;
    expect(all.root.digest).toBe(img.root.digest);
  });

  it("an index the store holds only partly fails with NotFound naming the missing platforms, before moving anything", async () => {
    const a = new MemoryStore();
    const img = await syntheticImage(a, { name: "x", platforms: three });
    const partial = new MemoryStore();
    await pull("x", { resolver: a, store: partial, platform: "linux/arm64" }).done;
    const b = new MemoryStore();
    const op = push("remote:1", { store: partial, name: "x", resolver: asRemote(b) });
    const err = await op.done.catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "NotFound", details: { digest: img.root.digest, missing: [img.manifests[0]!.digest, img.manifests[2]!.digest], present: ["linux/arm64"] } });
    expect((err as Error).message).toMatch(/missing linux\/amd64, linux\/s390x.*select one platform \(e\.g\. linux\/arm64\)/);
    expect((await present(b, img.all)).size).toBe(0);
    // The hint works.
    const one = await push("remote:1", { store: partial, name: "x", resolver: asRemote(b), platform: "linux/arm64" }).done;
    expect(one.root.digest).toBe(img.manifests[1]!.digest);
  });
});

describe("deep graphs", () => {
  it("copies ten nested indexes with one manifest slot and one blob slot", async () => {
    const a = new MemoryStore();
    const img = await syntheticImage(a, { platforms: [{ os: "linux", architecture: "amd64" }], layers: 2, layerSize: 4096 });
    let top = img.root;
    const indexes = [top];
    for (let i = 0; i < 10; i++) {
      const doc = { schemaVersion: 2, mediaType: MediaTypes.OciIndex, manifests: [{ mediaType: top.mediaType, digest: top.digest, size: top.size }], annotations: { level: String(i) } };
      top = await put(a, MediaTypes.OciIndex, Buffer.from(JSON.stringify(doc)));
      indexes.push(top);
    }
    await a.setName("deep", top);
    const b = new MemoryStore();
    const order: string[] = [];
    const op = copy("deep", "deep", { from: a, to: b, concurrency: 1, manifestConcurrency: 1 });
    op.events.on("done", (e) => order.push(e.digest));
    const r = await op.done;
    expect(r.totals.blobsDone).toBe(img.all.length + 10);
    // Innermost first, outermost last.
    expect(indexes.map((d) => order.indexOf(d.digest))).toEqual([...indexes.map((d) => order.indexOf(d.digest))].sort((x, y) => x - y));
    expect(order[order.length - 1]).toBe(top.digest);
  });
});

describe("referrers", () => {
  it("copies the referrers of the root (and of theirs) after their subject when asked", async () => {
    const a = new MemoryStore();
    const img = await syntheticImage(a, { name: "x" });
    const sbom = await artifact(a, img.root, "application/spdx+json", "sbom");
    const sig = await artifact(a, sbom, "application/vnd.dev.cosign.simplesigning.v1+json", "sig");
    const unrelated = await artifact(a, img.manifests[0]!, "application/x-other", "other");

    const plain = new MemoryStore();
    await copy("x", "x", { from: a, to: plain }).done;
    expect((await present(plain, [sbom, sig])).size).toBe(0);

    const b = new MemoryStore();
    const order: string[] = [];
    // From a store, one scan of its small blobs answers for every subject of the walk.
    const scans = vi.spyOn(LocalResolver.prototype, "referrersBySubject");
    const op = copy("x", "x", { from: a, to: b, referrers: true });
    op.events.on("done", (e) => order.push(e.digest));
    await op.done;
    expect(scans).toHaveBeenCalledTimes(1);
    scans.mockRestore();
    const have = await present(b, [sbom, sig, unrelated]);
    // The platform manifest's referrer comes too: every copied manifest is a subject.
    expect(have.size).toBe(3);
    expect(order.indexOf(sbom.digest)).toBeGreaterThan(order.indexOf(img.root.digest));
    expect(order.indexOf(sig.digest)).toBeGreaterThan(order.indexOf(sbom.digest));

    const filtered = new MemoryStore();
    await copy("x", "x", { from: a, to: filtered, referrers: { artifactType: "application/spdx+json" } }).done;
    expect([...(await present(filtered, [sbom, sig, unrelated]))]).toEqual([sbom.digest]);
  });
});

describe("referrers scan of a store", () => {
  it("skips a blob deleted between the listing and its read (another prune), instead of failing", async () => {
    const a = new MemoryStore();
    const img = await syntheticImage(a, { name: "x" });
    const sbom = await artifact(a, img.root, "application/spdx+json", "sbom");
    const gone = img.layers[0]!;
    const read = a.readerAt.bind(a);
    a.readerAt = async (d, o) => {
      if (d.digest === gone.digest) throw new NotFoundError("deleted meanwhile");
      return read(d, o);
    };
    const map = await new LocalResolver(a).referrersBySubject();
    expect(map.get(img.root.digest)?.map((d) => d.digest)).toEqual([sbom.digest]);
  });
});

describe("concurrent pulls", () => {
  const stores: Array<() => Promise<ContentStore>> = [async () => new MemoryStore(), async () => openFsStore(await tempDir())];

  it("two pulls of one image into one store share the work and leave no ingests", async () => {
    const a = new MemoryStore();
    const img = await syntheticImage(a, { name: "x", layers: 4, layerSize: 128 * 1024 });
    for (const make of stores) {
      const dst = await make();
      const [r1, r2] = await Promise.all([
        pull("x", { resolver: a, store: dst, platform: "all", name: "one" }).done,
        pull("x", { resolver: a, store: dst, platform: "all", name: "two" }).done,
      ]);
      expect((await present(dst, img.all)).size).toBe(img.all.length);
      expect((await dst.getName("one")).digest).toBe(img.root.digest);
      expect((await dst.getName("two")).digest).toBe(img.root.digest);
      const total = img.all.reduce((n, d) => n + d.size, 0);
      // Each blob crossed once: the second puller waited for the lock, then found it committed.
      expect(r1.totals.bytesTransferred + r2.totals.bytesTransferred).toBeLessThanOrEqual(total + img.root.size + img.manifests.reduce((n, d) => n + d.size, 0));
      expect(await active(dst)).toEqual([]);
    }
  });
});
