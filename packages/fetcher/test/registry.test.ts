/**
 * Against real servers with images pushed by skopeo, no mocks: ferry's embedded registry and
 * docker-registry (distribution 2.8), the same assertions for both (servers.ts).
 */
import { createReadStream } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, expect, it } from "vitest";
import { digestHex, digestOf, digestStream, MediaTypes, pull, type Descriptor } from "@ferry/core";
import { createMemoryStore } from "@ferry/store-memory";
import { buildImage, makeImage, skopeo, type BuiltLayout, type MadeImage } from "@ferry/testkit";
import { createRegistryResolver, fetchToStore, HttpReadSeeker, type RegistryResolver } from "../src/index.ts";
import { describeEachServer } from "./servers.ts";

const blobPath = (dir: string, d: Descriptor) => join(dir, "blobs", "sha256", digestHex(d.digest));
const fileSource = (dir: string, d: Descriptor) => ({ open: (offset = 0) => createReadStream(blobPath(dir, d), { start: offset }) });

describeEachServer(
  "registry transport",
  (ctx) => {
    let resolver: RegistryResolver;
    let image: MadeImage;
    let work: string;
    let layout: BuiltLayout;

    beforeAll(async () => {
      work = await mkdtemp(join(tmpdir(), "ferry-fetcher-"));
      resolver = createRegistryResolver({ retry: { minDelayMs: 10, maxDelayMs: 50 } });
      image = await makeImage(ctx.server.host, "demo/multi:v1", {
        layers: 2,
        layerSize: 256 * 1024,
        platforms: ["linux/amd64", "linux/arm64"],
        layoutDir: join(work, "multi"),
      });
      layout = await buildImage({ dir: join(work, "push-src"), layers: 2, layerSize: 3 * 1024 * 1024 + 17, name: "src" });
    }, 120_000);
    afterAll(async () => {
      await resolver?.close();
      if (work) await rm(work, { recursive: true, force: true });
    });

    it("resolves a tag of a two-platform index to what skopeo pushed", async () => {
      const r = await resolver.resolve(image.reference);
      expect(r.name).toBe(`${ctx.server.host}/demo/multi`);
      expect(r.descriptor.digest).toBe(image.digest);
      expect(r.descriptor.mediaType).toBe(MediaTypes.OciIndex);
      expect(r.descriptor.size).toBe(image.root.size);
    });

    it("resolves and fetches a Docker manifest list", async () => {
      const docker = await makeImage(ctx.server.host, "demo/docker:v1", { layers: 1, layerSize: 10_000, platforms: ["linux/amd64", "linux/arm64"], format: "docker" });
      const r = await resolver.resolve(docker.reference);
      expect(r.descriptor).toEqual({ mediaType: MediaTypes.DockerManifestList, digest: docker.digest, size: docker.root.size });
      const f = await resolver.fetcher(r.name);
      for (const d of [...docker.manifests, ...docker.layers]) expect((await digestStream(await f.fetch(d))).digest).toBe(d.digest);
      const child = await resolver.resolve(`${r.name}@${docker.manifests[0]!.digest}`);
      expect(child.descriptor.mediaType).toBe(MediaTypes.DockerManifest);
    }, 60_000);

    it("resolves a digest reference by hashing the bytes, and fetchManifest returns them", async () => {
      const ref = `${ctx.server.host}/demo/multi@${image.manifests[1]!.digest}`;
      const r = await resolver.resolve(ref);
      expect(r.descriptor.digest).toBe(image.manifests[1]!.digest);
      expect(r.descriptor.mediaType).toBe(MediaTypes.OciManifest);
      const m = await resolver.fetchManifest(ref);
      expect(digestOf(m.data)).toBe(image.manifests[1]!.digest);
      const onDisk = await readFile(blobPath(image.dir, image.manifests[1]!));
      expect(Buffer.from(m.data).equals(onDisk)).toBe(true);
    });

    it("fetches every blob with the digests skopeo pushed", async () => {
      const f = await resolver.fetcher(`${ctx.server.host}/demo/multi`);
      for (const d of [image.root, ...image.manifests, ...image.configs, ...image.layers]) {
        const got = await digestStream(await f.fetch(d));
        expect(got).toEqual({ digest: d.digest, size: d.size });
      }
    });

    it("fetches from an offset with Range, and reads at arbitrary offsets through a read-seeker", async () => {
      const f = await resolver.fetcher(`${ctx.server.host}/demo/multi`);
      const layer = image.layers[0]!;
      const whole = await readFile(blobPath(image.dir, layer));
      const s = await f.fetch(layer, { offset: 1000 });
      expect(s.rangeIgnored).toBeFalsy();
      const chunks: Buffer[] = [];
      for await (const c of s) chunks.push(c as Buffer);
      expect(Buffer.concat(chunks).equals(whole.subarray(1000))).toBe(true);

      const ra = await f.readerAt(layer);
      expect(Buffer.from(await ra.read(12345, 100)).equals(whole.subarray(12345, 12445))).toBe(true);
      expect((await ra.read(layer.size - 10, 100)).byteLength).toBe(10);
      expect((await ra.read(layer.size, 100)).byteLength).toBe(0);
      const part: Buffer[] = [];
      for await (const c of ra.createReadStream({ offset: 5, end: 70_000 })) part.push(c as Buffer);
      expect(Buffer.concat(part).equals(whole.subarray(5, 70_000))).toBe(true);
      await ra.close();
      const rs = await f.readSeeker(layer);
      expect(rs).toBeInstanceOf(HttpReadSeeker);
      expect(Buffer.from(await rs.read(layer.size - 3, 3)).equals(whole.subarray(layer.size - 3))).toBe(true);
      await rs.close();
    });

    it("fetches a blob into a store, and resumes a partial ingest", async () => {
      const f = await resolver.fetcher(`${ctx.server.host}/demo/multi`);
      const store = createMemoryStore();
      const layer = image.layers[1]!;
      // Leave half of it in the ingest, as an interrupted pull would.
      const w = await store.writer({ ref: `layer-${layer.digest}`, total: layer.size, expected: layer.digest });
      const whole = await readFile(blobPath(image.dir, layer));
      await w.write(whole.subarray(0, 100_000));
      await w.close();
      const offsets: number[] = [];
      expect(await fetchToStore(f, layer, store, { onProgress: (o) => offsets.push(o) })).toBe("written");
      expect(offsets[0]).toBeGreaterThan(100_000);
      expect((await store.info(layer.digest)).size).toBe(layer.size);
      expect(await fetchToStore(f, layer, store)).toBe("exists");
    });

    it("parallel ranged fetch into a store gives the same blob", async () => {
      const f = await resolver.fetcher(`${ctx.server.host}/demo/multi`);
      const store = createMemoryStore();
      const layer = image.layers[2]!;
      await fetchToStore(f, layer, store, { parallelRangeThreshold: 0, rangeChunkSize: 64 * 1024, parallelRanges: 3 });
      const ra = await store.readerAt(layer);
      expect(await digestStream(ra.createReadStream())).toEqual({ digest: layer.digest, size: layer.size });
    });

    it("pull with parallel ranges set on the resolver gives the same blobs", async () => {
      const r = createRegistryResolver({ parallelRangeThreshold: 0, rangeChunkSize: 64 * 1024, parallelRanges: 3 });
      try {
        const store = createMemoryStore();
        await pull(`${ctx.server.host}/demo/multi:v1`, { resolver: r, store, platform: "all" }).done;
        for (const l of image.layers) {
          const ra = await store.readerAt(l);
          expect(await digestStream(ra.createReadStream())).toEqual({ digest: l.digest, size: l.size });
          await ra.close();
        }
      } finally {
        await r.close();
      }
    });

    async function pushLayout(repo: string, r: RegistryResolver, opts: { mountFrom?: string } = {}) {
      const p = await r.pusher(`${ctx.server.host}/${repo}`);
      const outcomes: string[] = [];
      const img = layout.images[0]!;
      for (const d of [...img.layers, img.config]) outcomes.push(await p.push(d, fileSource(layout.dir, d), opts));
      outcomes.push(await p.push(img.manifest, fileSource(layout.dir, img.manifest), { tag: "v1" }));
      return outcomes;
    }

    async function expectSkopeoReadsBack(repo: string) {
      const img = layout.images[0]!;
      const raw = await skopeo(["inspect", "--raw", "--tls-verify=false", `docker://${ctx.server.host}/${repo}:v1`]);
      expect(digestOf(raw)).toBe(img.manifest.digest);
      const out = join(work, `copy-${repo.replace(/\W/g, "_")}`);
      await skopeo(["copy", "-q", "--src-tls-verify=false", `docker://${ctx.server.host}/${repo}:v1`, `oci:${out}:x`]);
      for (const l of img.layers) {
        const got = await digestStream(createReadStream(blobPath(out, l)));
        expect(got.digest).toBe(l.digest);
      }
    }

    it("pushes monolithically; skopeo reads it back identically", async () => {
      const outcomes = await pushLayout("pushed/mono", resolver);
      expect(outcomes).toEqual(["pushed", "pushed", "pushed", "pushed"]);
      expect(await pushLayout("pushed/mono", resolver)).toEqual(["exists", "exists", "exists", "exists"]);
      await expectSkopeoReadsBack("pushed/mono");
    }, 60_000);

    it("pushes in PATCH chunks; skopeo reads it back identically", async () => {
      const chunked = createRegistryResolver({ uploadChunkSize: 1024 * 1024, minUploadChunkSize: 1024 * 1024 });
      try {
        const progress: number[] = [];
        const p = await chunked.pusher(`${ctx.server.host}/pushed/chunked`);
        const layer = layout.images[0]!.layers[0]!;
        expect(await p.push(layer, fileSource(layout.dir, layer), { onProgress: (n) => progress.push(n) })).toBe("pushed");
        expect(progress.at(-1)).toBe(layer.size);
        expect(await pushLayout("pushed/chunked", chunked)).toEqual(["exists", "pushed", "pushed", "pushed"]);
        const patches = ctx.server.requests().filter((q) => q.method === "PATCH" && q.uri.startsWith("/v2/pushed/chunked/blobs/uploads/"));
        // 3 MiB + tar header per layer in 1 MiB chunks: four PATCHes each for the two layers.
        expect(patches.length).toBeGreaterThanOrEqual(8);
        await expectSkopeoReadsBack("pushed/chunked");
      } finally {
        await chunked.close();
      }
    }, 60_000);

    it("aborts a push mid-upload, and a later push succeeds", async () => {
      const p = await resolver.pusher(`${ctx.server.host}/pushed/aborted`);
      const l = layout.images[0]!.layers[1]!;
      const ac = new AbortController();
      const run = p.push(l, fileSource(layout.dir, l), { signal: ac.signal, onProgress: (n) => n > 100_000 && ac.abort() });
      await expect(run).rejects.toMatchObject({ code: "Aborted" });
      expect(await p.exists(l)).toBe(false);
      expect(await p.push(l, fileSource(layout.dir, l))).toBe("pushed");
    });

    it("pushes and fetches a zero-byte blob", async () => {
      const empty: Descriptor = { mediaType: MediaTypes.OciLayer, digest: digestOf(""), size: 0 };
      const p = await resolver.pusher(`${ctx.server.host}/pushed/empty`);
      expect(await p.push(empty, { open: () => Readable.from([]) })).toBe("pushed");
      const f = await resolver.fetcher(`${ctx.server.host}/pushed/empty`);
      expect(await digestStream(await f.fetch(empty))).toEqual({ digest: empty.digest, size: 0 });
      const wrong = { ...empty, digest: digestOf("x") };
      await expect(digestStream(await f.fetch(wrong))).rejects.toMatchObject({ code: "DigestMismatch" });
    });

    it("mounts blobs across repositories", async () => {
      await pushLayout("mount/src", resolver);
      expect(await pushLayout("mount/dst", resolver, { mountFrom: "mount/src" })).toEqual(["mounted", "mounted", "mounted", "pushed"]);
      // From a repository without the blob: the 202 session is used for a normal upload.
      const fresh = await buildImage({ dir: join(work, "fresh"), layers: 1, layerSize: 1000, name: "f" });
      const p = await resolver.pusher(`${ctx.server.host}/mount/dst`);
      const l = fresh.layers[0]!;
      expect(await p.push(l, fileSource(fresh.dir, l), { mountFrom: "mount/src" })).toBe("pushed");
      expect(await p.exists(l)).toBe(true);
    }, 60_000);

    it("lists tags and pages through the catalog (n=2)", async () => {
      const p = await resolver.pusher(`${ctx.server.host}/tagged`);
      const img = layout.images[0]!;
      for (const d of [...img.layers, img.config]) await p.push(d, fileSource(layout.dir, d));
      for (const t of ["a", "b", "c", "d", "e"]) await p.push(img.manifest, fileSource(layout.dir, img.manifest), { tag: t });
      const tags: string[] = [];
      for await (const t of resolver.tags(`${ctx.server.host}/tagged`, { n: 2 })) tags.push(t);
      if (ctx.target.quirks.tagsPagination) {
        // Sorted pages of two, followed through the Link header.
        expect(tags).toEqual(["a", "b", "c", "d", "e"]);
        expect(ctx.server.requests().filter((q) => q.uri.startsWith("/v2/tagged/tags/list?") && /[?&]n=2\b/.test(q.uri)).length).toBe(3);
      } else {
        // distribution 2.8 ignores `n` on tag lists (one unsorted page); its pagination is
        // checked on the catalog below, which 2.8 does paginate.
        expect(tags.sort()).toEqual(["a", "b", "c", "d", "e"]);
      }
      const repos: string[] = [];
      for await (const r of resolver.catalog(ctx.server.host, { n: 2 })) repos.push(r);
      expect(repos).toContain("tagged");
      expect(repos).toContain("demo/multi");
      expect(new Set(repos).size).toBe(repos.length);
      const pages = ctx.server.requests().filter((q) => q.uri.startsWith("/v2/_catalog?") && /[?&]n=2\b/.test(q.uri));
      expect(pages.length).toBeGreaterThanOrEqual(Math.ceil(repos.length / 2));
    }, 60_000);

    it("finds referrers (the referrers API, or the tag-schema fallback on 2.8), filtered by artifact type", async () => {
      const name = `${ctx.server.host}/demo/multi`;
      const subject = image.manifests[0]!;
      expect(await resolver.referrers(name, subject.digest)).toEqual([]);
      const p = await resolver.pusher(name);
      const empty = Buffer.from("{}");
      const emptyDesc = { mediaType: MediaTypes.OciEmpty, digest: digestOf(empty), size: 2 };
      await p.push(emptyDesc, { open: () => Readable.from([empty]) });
      const sig = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MediaTypes.OciManifest,
          artifactType: "application/vnd.example.sig",
          config: emptyDesc,
          layers: [emptyDesc],
          subject,
        }),
      );
      const sigDesc: Descriptor = { mediaType: MediaTypes.OciManifest, digest: digestOf(sig), size: sig.byteLength, artifactType: "application/vnd.example.sig" };
      await p.push(sigDesc, { open: () => Readable.from([sig]) });
      const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.OciIndex, manifests: [sigDesc] }));
      const indexDesc = { mediaType: MediaTypes.OciIndex, digest: digestOf(index), size: index.byteLength };
      await p.push(indexDesc, { open: () => Readable.from([index]) }, { tag: subject.digest.replace(":", "-") });
      expect(await resolver.referrers(name, subject.digest)).toEqual([sigDesc]);
      expect(await resolver.referrers(name, subject.digest, { artifactType: "application/vnd.example.sig" })).toEqual([sigDesc]);
      expect(await resolver.referrers(name, subject.digest, { artifactType: "other" })).toEqual([]);
      // Which path answered: the API where the server has one, else the fallback tag.
      const fallbackReads = ctx.server
        .requests()
        .filter((q) => (q.method === "GET" || q.method === "HEAD") && q.uri.startsWith(`/v2/demo/multi/manifests/${subject.digest.replace(":", "-")}`));
      if (ctx.target.quirks.referrersApi) expect(fallbackReads).toEqual([]);
      else expect(fallbackReads.length).toBeGreaterThanOrEqual(3);
    });

    it("deletes a manifest by tag (resolving it to its digest)", async () => {
      const p = await resolver.pusher(`${ctx.server.host}/deleteme`);
      const img = layout.images[0]!;
      for (const d of [...img.layers, img.config]) await p.push(d, fileSource(layout.dir, d));
      await p.push(img.manifest, fileSource(layout.dir, img.manifest), { tag: "x" });
      expect(await resolver.deleteManifest(`${ctx.server.host}/deleteme:x`)).toBe(img.manifest.digest);
      await expect(resolver.resolve(`${ctx.server.host}/deleteme@${img.manifest.digest}`)).rejects.toMatchObject({ code: "NotFound" });
    });

    it("maps registry errors to typed errors", async () => {
      await expect(resolver.resolve(`${ctx.server.host}/demo/multi:nope`)).rejects.toMatchObject({ code: "NotFound" });
      await expect(resolver.resolve(`${ctx.server.host}/nowhere/repo:v1`)).rejects.toMatchObject({ code: "NotFound" });
      const f = await resolver.fetcher(`${ctx.server.host}/demo/multi`);
      const missing = { mediaType: MediaTypes.OciLayerGzip, digest: digestOf("nope"), size: 4 };
      const err = await f.fetch(missing).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "NotFound", details: { status: 404, method: "GET", registryCodes: ["BLOB_UNKNOWN"] } });
    });
  },
  { tools: ["skopeo"] },
);
