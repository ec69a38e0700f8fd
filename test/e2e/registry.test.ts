/**
 * Pull, push and copy against a real registry (distribution's docker-registry), checked with
 * skopeo. Skipped when the tools are missing, failing instead under CI=true.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, expect, it, vi } from "vitest";
import {
  active,
  copy,
  createRegistryResolver,
  describeWithRegistry,
  type Descriptor,
  directIoSupported,
  FsWriter,
  digestOf,
  makeImage,
  MediaTypes,
  MemoryStore,
  openFsStore,
  pull,
  push,
  skopeo,
  startDockerRegistry,
  type StatusEvent,
} from "./deps.ts";
import { artifact, collect, present, put, syntheticImage, tempDirs } from "./fixtures.ts";

const MiB = 1024 * 1024;
const tempDir = tempDirs("ferry-e2e-");

/** sha256 of what the registry serves for `ref` (the manifest or index bytes). */
async function remoteDigest(ref: string): Promise<string> {
  const raw = await skopeo(["inspect", "--raw", "--tls-verify=false", `docker://${ref}`]);
  return `sha256:${createHash("sha256").update(raw).digest("hex")}`;
}

/**
 * Pull `ref` one blob at a time and abort it once half the bytes are done; returns what
 * survived in `store`: committed blobs plus the partial ingests' bytes (`kept`), and the latter alone.
 */
async function pullAbortedAtHalf(
  ref: string,
  resolver: ReturnType<typeof createRegistryResolver>,
  store: Awaited<ReturnType<typeof openFsStore>>,
  name: string,
  blobs: Descriptor[],
): Promise<{ kept: number; partial: number }> {
  const total = blobs.reduce((n, d) => n + d.size, 0);
  const ac = new AbortController();
  const op = pull(ref, { resolver, store, name, signal: ac.signal, concurrency: 1, throttleMs: 0 });
  op.events.on("progress", (p) => {
    if (p.bytesDone >= total / 2) ac.abort();
  });
  await expect(op.done).rejects.toMatchObject({ code: "Aborted" });
  const committed = await present(store, blobs);
  const partial = (await active(store)).reduce((n, s) => n + s.offset, 0);
  return { kept: blobs.filter((d) => committed.has(d.digest)).reduce((n, d) => n + d.size, 0) + partial, partial };
}

describeWithRegistry(
  "pull / push / copy against docker-registry",
  (ctx) => {
    const resolver = createRegistryResolver();
    let multi: { reference: string; root: Descriptor; manifests: Descriptor[]; configs: Descriptor[]; layers: Descriptor[] };
    let all: Descriptor[];

    beforeAll(async () => {
      multi = await makeImage(ctx.registry.host, "multi:1", {
        platforms: ["linux/amd64", "linux/arm64"],
        layers: 2,
        layerSize: 256 * 1024,
      });
      all = [multi.root, ...multi.manifests, ...multi.configs, ...multi.layers];
    });

    it("pulls one platform of a two-platform index", async () => {
      const dir = await tempDir();
      const store = await openFsStore(dir);
      const r = await pull(multi.reference, { resolver, store, platform: "linux/arm64", name: "multi" }).done;
      expect(r.root.digest).toBe(multi.root.digest);
      const have = await present(store, all);
      const arm = 1;
      const want = [multi.root, multi.manifests[arm]!, multi.configs[arm]!, ...multi.layers.slice(2, 4)];
      expect([...have].sort()).toEqual(want.map((d) => d.digest).sort());
      expect(r.totals.bytesTransferred).toBe(want.reduce((n, d) => n + d.size, 0));
      // skopeo reads the layout by the recorded name and finds the arm64 image complete.
      const out = JSON.parse(await skopeo(["inspect", "--override-arch", "arm64", `oci:${dir}:multi`])) as { Architecture: string; Layers: string[] };
      expect(out.Architecture).toBe("arm64");
      expect(out.Layers).toEqual(multi.layers.slice(2, 4).map((l) => l.digest));
    });

    it("a store holding one platform of an index: push refuses the incomplete index up front, pushes that platform alone when asked", async () => {
      const dir = await tempDir();
      const store = await openFsStore(dir);
      await pull(multi.reference, { resolver, store, platform: "linux/arm64", name: "arm-only" }).done;
      const arm = 1;

      // The whole index cannot go: distribution refuses an index naming manifests it lacks.
      const whole = push(`${ctx.registry.host}/partial:1`, { store, name: "arm-only", resolver });
      const we = collect(whole);
      const err = await whole.done.catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "NotFound", details: { missing: [multi.manifests[0]!.digest], present: [expect.stringMatching(/^linux\/arm64/)] } });
      expect((err as Error).message).toMatch(/holds 1 of the 2 manifests .*missing linux\/amd64.*select one platform/);
      // Refused before anything moved.
      expect((await we).some((e) => e.type === "uploading" || e.type === "done")).toBe(false);
      await expect(skopeo(["inspect", "--raw", "--tls-verify=false", `docker://${ctx.registry.host}/partial:1`])).rejects.toThrow();

      // With the platform selected, its image is pushed alone and the tag points at its manifest.
      const one = push(`${ctx.registry.host}/partial:1`, { store, name: "arm-only", resolver, platform: "linux/arm64" });
      const oe = collect(one);
      const r = await one.done;
      expect(r.root.digest).toBe(multi.manifests[arm]!.digest);
      expect((await oe).find((e) => e.type === "skipped" && e.digest === multi.root.digest)).toMatchObject({ reason: "platform" });
      expect(await remoteDigest(`${ctx.registry.host}/partial:1`)).toBe(multi.manifests[arm]!.digest);
      const out = JSON.parse(await skopeo(["inspect", "--tls-verify=false", `docker://${ctx.registry.host}/partial:1`])) as { Architecture: string; Layers: string[] };
      expect(out.Architecture).toBe("arm64");
      expect(out.Layers).toEqual(multi.layers.slice(2, 4).map((l) => l.digest));
    });

    it("a nested index: with one platform selected its manifest goes alone; whole, the registry takes both levels", async () => {
      const src = new MemoryStore();
      const inner = await syntheticImage(src, { platforms: [{ os: "linux", architecture: "amd64" }, { os: "linux", architecture: "arm64" }], layers: 1, layerSize: 4096 });
      const outer = await put(src, MediaTypes.OciIndex, Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.OciIndex, manifests: [inner.root] })));
      await src.setName("nested", outer);
      // Before, the inner index went up without its amd64 manifest and distribution refused it.
      const one = copy("nested", `${ctx.registry.host}/nested:arm`, { from: src, to: resolver, platform: "linux/arm64" });
      const r = await one.done;
      expect(r.root.digest).toBe(inner.manifests[1]!.digest);
      expect(await remoteDigest(`${ctx.registry.host}/nested:arm`)).toBe(inner.manifests[1]!.digest);
      const whole = await copy("nested", `${ctx.registry.host}/nested:all`, { from: src, to: resolver }).done;
      expect(whole.root.digest).toBe(outer.digest);
      expect(await remoteDigest(`${ctx.registry.host}/nested:all`)).toBe(outer.digest);
    });

    it("pulls every platform, pushes it back and the registry serves the same digests", async () => {
      const dir = await tempDir();
      const store = await openFsStore(dir);
      const op = pull(multi.reference, { resolver, store, platform: "all", name: "multi" });
      const events = collect(op);
      const r = await op.done;
      expect((await present(store, all)).size).toBe(all.length);
      expect(r.totals.blobsDone).toBe(all.length);
      expect((await events).filter((e) => e.type === "done")).toHaveLength(all.length);
      const index = JSON.parse(await readFile(join(dir, "index.json"), "utf8")) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> };
      expect(index.manifests.find((m) => m.annotations?.["org.opencontainers.image.ref.name"] === "multi")?.digest).toBe(multi.root.digest);

      // skopeo copies the layout by that name, every platform, digests unchanged.
      const viaSkopeo = `${ctx.registry.host}/fromlayout:1`;
      await skopeo(["copy", "--all", "--preserve-digests", "--dest-tls-verify=false", `oci:${dir}:multi`, `docker://${viaSkopeo}`]);
      expect(await remoteDigest(viaSkopeo)).toBe(multi.root.digest);

      const dst = `${ctx.registry.host}/pushed:2`;
      const pushed = push(dst, { store, name: "multi", resolver });
      const pe = collect(pushed);
      await pushed.done;
      expect((await pe).filter((e) => e.type === "done" || e.type === "exists" || e.type === "mounted")).toHaveLength(all.length);
      expect((await pe).some((e) => e.type === "uploading")).toBe(true);
      expect(await remoteDigest(dst)).toBe(multi.root.digest);
      for (const m of multi.manifests) expect(await remoteDigest(`${ctx.registry.host}/pushed@${m.digest}`)).toBe(m.digest);

      // Pushing again finds everything: nothing moves.
      const again = await push(dst, { store, name: "multi", resolver }).done;
      expect(again.totals.bytesTransferred).toBe(0);

      // Mounting from the repository that has the blobs instead of uploading them.
      const mounted = push(`${ctx.registry.host}/mounted:1`, { store, name: "multi", resolver, from: "multi" });
      const me = collect(mounted);
      await mounted.done;
      const kinds = (await me).filter((e) => e.type === "mounted").map((e) => e.digest);
      expect(kinds.length).toBeGreaterThanOrEqual(multi.layers.length);
      expect(await remoteDigest(`${ctx.registry.host}/mounted:1`)).toBe(multi.root.digest);
    });

    it("interrupted at ~50% and re-run, transfers only the missing part", async () => {
      const img = await makeImage(ctx.registry.host, "big:1", { layers: 2, layerSize: 6 * MiB });
      const blobs = [img.root, ...img.configs, ...img.layers];
      const total = blobs.reduce((n, d) => n + d.size, 0);
      const dir = await tempDir();
      const store = await openFsStore(dir);
      const { kept, partial } = await pullAbortedAtHalf(img.reference, resolver, store, "big", blobs);
      expect(kept).toBeGreaterThan(total * 0.3);
      expect(kept).toBeLessThan(total);

      const op2 = pull(img.reference, { resolver, store, name: "big" });
      const events2 = collect(op2);
      const r = await op2.done;
      expect(r.totals.bytesTransferred).toBe(total - kept);
      expect(r.totals.bytesDone).toBe(total);
      if (partial > 0) expect((await events2).some((e: StatusEvent) => e.type === "resumed")).toBe(true);
      expect((await present(store, blobs)).size).toBe(blobs.length);
      expect(await active(store)).toEqual([]);
    });

    it("socket reads into store-fs's lent batches: layers arrive whole, an interrupted pull resumes exactly, a copy streams them on", async () => {
      const img = await makeImage(ctx.registry.host, "socket:1", { layers: 2, layerSize: 5 * MiB });
      const blobs = [img.root, ...img.configs, ...img.layers];
      const total = blobs.reduce((n, d) => n + d.size, 0);
      const viaSocket = createRegistryResolver({ socketReadMinBytes: MiB });
      const dir = await tempDir();
      const store = await openFsStore(dir, { directWriteMinBytes: MiB });
      const window = vi.spyOn(FsWriter.prototype, "window");
      try {
        const { kept } = await pullAbortedAtHalf(img.reference, viaSocket, store, "socket", blobs);
        expect(kept).toBeLessThan(total);

        const r = await pull(img.reference, { resolver: viaSocket, store, name: "socket" }).done;
        expect(r.totals.bytesTransferred).toBe(total - kept);
        expect((await present(store, blobs)).size).toBe(blobs.length);
        expect(await active(store)).toEqual([]);
        // The layers were read into the writers' own batches (when the filesystem takes O_DIRECT).
        const lent = window.mock.results.filter((x) => x.type === "return" && x.value !== undefined).length;
        if (directIoSupported(dir)) expect(lent).toBeGreaterThanOrEqual(5);
        else expect(lent).toBe(0);
        const out = JSON.parse(await skopeo(["inspect", `oci:${dir}:socket`])) as { Layers: string[] };
        expect(out.Layers).toEqual(img.layers.map((l) => l.digest));

        // Registry to another registry (no mount possible): the socket-read bodies stream on
        // into the uploads.
        const second = await startDockerRegistry();
        try {
          const dest = `${second.host}/socket-copy:1`;
          const copied = await copy(img.reference, dest, { from: viaSocket, to: viaSocket }).done;
          expect(copied.root.digest).toBe(img.root.digest);
          expect(copied.totals.bytesTransferred).toBe(total);
          expect(await remoteDigest(dest)).toBe(img.root.digest);
          const pushed = JSON.parse(await skopeo(["inspect", "--tls-verify=false", `docker://${dest}`])) as { Layers: string[] };
          expect(pushed.Layers).toEqual(img.layers.map((l) => l.digest));
        } finally {
          await second.stop();
        }
      } finally {
        window.mockRestore();
        await viaSocket.close();
      }
    });

    it("pulls and pushes back a Docker manifest list with concurrency 1", async () => {
      const docker = await makeImage(ctx.registry.host, "dockerfmt:1", { platforms: ["linux/amd64", "linux/arm/v7"], layers: 1, layerSize: 64 * 1024, format: "docker" });
      const blobs = [docker.root, ...docker.manifests, ...docker.configs, ...docker.layers];
      const store = await openFsStore(await tempDir());
      const r = await pull(docker.reference, { resolver, store, platform: "all", concurrency: 1, manifestConcurrency: 1 }).done;
      expect(r.root.mediaType).toBe("application/vnd.docker.distribution.manifest.list.v2+json");
      expect((await present(store, blobs)).size).toBe(blobs.length);
      const dst = `${ctx.registry.host}/dockerback:1`;
      await push(dst, { store, name: docker.reference, resolver, concurrency: 1, manifestConcurrency: 1 }).done;
      expect(await remoteDigest(dst)).toBe(docker.root.digest);
    });

    it("copies referrers with their subject to the registry, writes the tag-schema index (distribution 2.8 has no referrers API), and back", async () => {
      const src = new MemoryStore();
      const img = await syntheticImage(src, { name: "r", platforms: [{ os: "linux", architecture: "amd64" }], layers: 1, layerSize: 4096 });
      const sbom = await artifact(src, img.root, "application/spdx+json", "sbom of the image");
      const repo = `${ctx.registry.host}/withrefs`;
      const up = copy("r", `${repo}:1`, { from: src, to: resolver, referrers: true });
      const ue = collect(up);
      await up.done;
      expect((await ue).find((e) => e.type === "done" && e.digest === sbom.digest)).toBeDefined();
      // The registry cannot list them by itself: ferry tagged an index of them `sha256-<hex of the subject>`.
      const tagRef = `${repo}:sha256-${img.root.digest.slice(7)}`;
      const tagRaw = await skopeo(["inspect", "--raw", "--tls-verify=false", `docker://${tagRef}`]);
      const tagIndex = JSON.parse(tagRaw) as { manifests: Descriptor[] };
      expect(tagIndex.manifests).toEqual([expect.objectContaining({ digest: sbom.digest, artifactType: "application/spdx+json" })]);
      expect((await ue).find((e) => e.type === "done" && e.kind === "index" && e.digest !== img.root.digest)).toBeDefined();
      // Copying again finds it listed: the tag index is not rewritten.
      const again = collect(copy("r", `${repo}:1`, { from: src, to: resolver, referrers: true }));
      expect((await again).filter((e) => e.type === "uploading")).toEqual([]);
      expect((await again).some((e) => "digest" in e && e.digest === digestOf(tagRaw))).toBe(false);

      const plain = new MemoryStore();
      await pull(`${repo}:1`, { resolver, store: plain, platform: "all" }).done;
      expect((await present(plain, [sbom])).size).toBe(0);
      const withRefs = new MemoryStore();
      const op = pull(`${repo}:1`, { resolver, store: withRefs, platform: "all", referrers: true });
      const events = collect(op);
      await op.done;
      expect((await present(withRefs, [sbom, ...img.all])).size).toBe(img.all.length + 1);
      const order = (await events).filter((e) => e.type === "done").map((e) => e.digest);
      expect(order.indexOf(sbom.digest)).toBeGreaterThan(order.indexOf(img.root.digest));
    });

    it("copies registry → layout → registry", async () => {
      const dir = await tempDir();
      const layout = await openFsStore(dir);
      const a = await copy(multi.reference, "copied", { from: resolver, to: layout }).done;
      expect(a.root.digest).toBe(multi.root.digest);
      const dst = `${ctx.registry.host}/roundtrip:1`;
      const b = await copy("copied", dst, { from: layout, to: resolver }).done;
      expect(b.root.digest).toBe(multi.root.digest);
      expect(await remoteDigest(dst)).toBe(multi.root.digest);
      // And registry → registry directly.
      const direct = copy(multi.reference, `${ctx.registry.host}/direct:1`, { from: resolver, to: resolver });
      const de = collect(direct);
      const c = await direct.done;
      expect(c.totals.blobsDone).toBe(all.length);
      // Same registry: the blobs are mounted from the source repository, not uploaded.
      const mounted = (await de).filter((e) => e.type === "mounted").map((e) => e.digest);
      expect(mounted).toEqual(expect.arrayContaining(multi.layers.map((l) => l.digest)));
      expect(c.totals.bytesTransferred).toBeLessThan(multi.layers.reduce((n, l) => n + l.size, 0));
      expect(await remoteDigest(`${ctx.registry.host}/direct:1`)).toBe(multi.root.digest);
    });
  },
  { tools: ["skopeo"] },
);
