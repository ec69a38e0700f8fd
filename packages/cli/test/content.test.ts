import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Readable } from "node:stream";
import { digestOf, ingestRef, MediaTypes, writeBlob, type Descriptor } from "@ferry/core";
import { openFsStore } from "@ferry/store-fs";
import { runCli, seedImage, startLocalRegistry, tempDir, type LocalRegistry } from "./helpers.ts";

let tmp: Awaited<ReturnType<typeof tempDir>>;
beforeAll(async () => {
  tmp = await tempDir();
});
afterAll(async () => {
  await tmp.remove();
});

describe("ferry content", () => {
  it("ingest commits stdin; ls, path and rm see it", async () => {
    const store = join(tmp.dir, "s1");
    const data = randomBytes(200_000);
    const digest = digestOf(data);
    const ing = await runCli(["content", "ingest", "--store", store, "--ref", "blob-1", "--expected-digest", digest, "--expected-size", String(data.length)], { stdin: data });
    expect(ing.code, ing.stderr).toBe(0);

    const ls = await runCli(["content", "ls", "-q", "--store", store]);
    expect(ls.stdout).toBe(`${digest}\n`);
    const long = await runCli(["content", "ls", "--store", store]);
    expect(long.stdout).toMatch(/^DIGEST/);
    expect(long.stdout).toContain(digest);
    const json = await runCli(["content", "ls", "--json", "--store", store]);
    expect(JSON.parse(json.stdout.trim())).toMatchObject({ digest, size: data.length });

    const path = await runCli(["content", "path", digest, "--store", store]);
    expect(path.code).toBe(0);
    expect(await readFile(path.stdout.trim())).toEqual(data);

    const rm = await runCli(["content", "rm", digest, "--store", store]);
    expect(rm.code).toBe(0);
    expect(rm.stdout).toBe(`${digest}\n`);
    expect((await runCli(["content", "ls", "-q", "--store", store])).stdout).toBe("");
    // Several digests: a missing one is reported (exit 3), the others are still deleted.
    const more = [randomBytes(1000), randomBytes(2000)];
    for (const b of more) {
      expect((await runCli(["content", "ingest", "--store", store, "--ref", digestOf(b), "--expected-digest", digestOf(b)], { stdin: b })).code).toBe(0);
    }
    const several = await runCli(["content", "rm", digestOf(more[0]!), digest, digestOf(more[1]!), "--store", store]);
    expect(several.code).toBe(3);
    expect(several.stderr).toContain(`${digest}: not found`);
    expect(several.stdout).toBe(`${digestOf(more[0]!)}\n${digestOf(more[1]!)}\n`);
    expect((await runCli(["content", "ls", "-q", "--store", store])).stdout).toBe("");
    // Gone now: path and rm say not found (exit 3).
    expect((await runCli(["content", "path", digest, "--store", store])).code).toBe(3);
    expect((await runCli(["content", "rm", digest, "--store", store])).code).toBe(3);
  });

  it("ingest refuses wrong content and keeps nothing committed", async () => {
    const store = join(tmp.dir, "s2");
    const data = randomBytes(10_000);
    const wrong = digestOf(Buffer.from("something else"));
    const r = await runCli(["content", "ingest", "--store", store, "--ref", "bad", "--expected-digest", wrong, "--expected-size", String(data.length)], { stdin: data });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/DigestMismatch/);
    expect((await runCli(["content", "ls", "-q", "--store", store])).stdout).toBe("");
    const short = await runCli(["content", "ingest", "--store", store, "--ref", "short", "--expected-digest", digestOf(data), "--expected-size", "20000"], { stdin: data });
    expect(short.code).toBe(1);
    expect(short.stderr).toMatch(/SizeMismatch/);
  });

  it("active lists an interrupted ingest; ingest resumes it by skipping what is already written", async () => {
    const store = join(tmp.dir, "s3");
    const data = randomBytes(300_000);
    const digest = digestOf(data);
    const fs = await openFsStore(store);
    const w = await fs.writer({ ref: "layer-resume", total: data.length, expected: digest });
    await w.write(data.subarray(0, 120_000));
    await w.close();

    const active = await runCli(["content", "active", "--json", "--store", store]);
    const st = JSON.parse(active.stdout.trim()) as { ref: string; offset: number; total: number };
    expect(st).toMatchObject({ ref: "layer-resume", offset: 120_000, total: data.length });
    expect((await runCli(["content", "active", "-q", "--store", store])).stdout).toBe("layer-resume\n");

    // The full stream again: the first 120 000 bytes are discarded, the rest appended.
    const r = await runCli(["content", "ingest", "--json", "--store", store, "--ref", "layer-resume", "--expected-digest", digest, "--expected-size", String(data.length)], { stdin: data });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim())).toMatchObject({ ref: "layer-resume", digest, outcome: "written" });
    expect((await runCli(["content", "active", "-q", "--store", store])).stdout).toBe("");
    const path = await runCli(["content", "path", digest, "--store", store]);
    expect(digestOf(await readFile(path.stdout.trim()))).toBe(digest);

    // Ingesting committed content again is a no-op success.
    const again = await runCli(["content", "ingest", "--store", store, "--ref", "layer-resume", "--expected-digest", digest], { stdin: data });
    expect(again.code).toBe(0);
  });

  describe("prune", () => {
    let reg: LocalRegistry;
    beforeAll(async () => {
      reg = await startLocalRegistry();
    });
    afterAll(async () => {
      await reg.stop();
    });

    it("keeps what an index.json entry without a name reaches (skopeo writes oci:DIR unnamed); a null entry is no error", async () => {
      const store = join(tmp.dir, "s-unnamed");
      const img = await seedImage(reg.host, "prune/unnamed:1", join(tmp.dir, "unnamed-layout"), { layers: 2, layerSize: 30_000 });
      expect((await runCli(["pull", img.reference, "-q", "--store", store, "--all-platforms"])).code).toBe(0);
      const indexFile = join(store, "index.json");
      const index = JSON.parse(await readFile(indexFile, "utf8")) as { manifests: Array<Descriptor | null> };
      for (const m of index.manifests) if (m?.annotations) delete m.annotations;
      index.manifests.push(null);
      await writeFile(indexFile, JSON.stringify(index));
      await new Promise((r) => setTimeout(r, 20));
      const pruned = await runCli(["content", "prune", "--json", "--blob-age", "0", "--store", store]);
      expect(pruned.code, pruned.stderr).toBe(0);
      expect(pruned.stdout).not.toContain('"type":"blob"');
      const left = new Set((await runCli(["content", "ls", "-q", "--store", store])).stdout.trim().split("\n"));
      for (const d of [img.root, ...img.layers]) expect(left.has(d.digest)).toBe(true);
    });

    it("removes no blob while a transfer into the store holds a lease, and the pull holds one", async () => {
      const store = join(tmp.dir, "s-lease");
      const fs = await openFsStore(store);
      const stray = randomBytes(4000);
      expect((await runCli(["content", "ingest", "--store", store, "--ref", "stray", "--expected-digest", digestOf(stray)], { stdin: stray })).code).toBe(0);
      await new Promise((r) => setTimeout(r, 20));
      const lease = await fs.lease();
      expect(await fs.activeLeases()).toBe(1);
      const held = await runCli(["content", "prune", "--blob-age", "0", "--store", store]);
      expect(held.code, held.stderr).toBe(0);
      expect(held.stdout).toContain("kept 1 unreferenced blobs: a transfer into the store is in progress");
      expect((await runCli(["content", "ls", "-q", "--store", store])).stdout).toContain(digestOf(stray));
      await lease.release();
      expect(await fs.activeLeases()).toBe(0);
      const pruned = await runCli(["content", "prune", "--blob-age", "0", "--store", store]);
      expect(pruned.stdout).toContain("removed 0 ingests, 1 blobs");

      // A pull holds a lease while it runs, and lets it go.
      const img = await seedImage(reg.host, "prune/leased:1", join(tmp.dir, "leased-layout"), { layers: 2, layerSize: 200_000 });
      const seen: number[] = [];
      const { pull } = await import("@ferry/core");
      const { createRegistryResolver } = await import("@ferry/fetcher");
      const resolver = createRegistryResolver();
      try {
        const op = pull(img.reference, { resolver, store: fs });
        const checks: Array<Promise<void>> = [];
        op.events.on("downloading", () => void checks.push(fs.activeLeases().then((n) => void seen.push(n))));
        await op.done;
        await Promise.all(checks);
      } finally {
        await resolver.close();
      }
      expect(Math.min(...seen)).toBeGreaterThanOrEqual(1);
      expect(await fs.activeLeases()).toBe(0);
    });

    it("removes expired ingests and unreferenced blobs, keeps everything a name reaches", async () => {
      const store = join(tmp.dir, "s4");
      const img = await seedImage(reg.host, "prune/app:1", join(tmp.dir, "prune-layout"), { layers: 2, layerSize: 50_000 });
      expect((await runCli(["pull", img.reference, "-q", "--store", store])).code).toBe(0);
      const stray = randomBytes(5000);
      const strayDigest = digestOf(stray);
      expect((await runCli(["content", "ingest", "--store", store, "--ref", "stray", "--expected-digest", strayDigest], { stdin: stray })).code).toBe(0);
      const fs = await openFsStore(store);
      const w = await fs.writer({ ref: "abandoned" });
      await w.write(randomBytes(1000));
      await w.close();

      // Defaults: nothing is old enough yet.
      const none = await runCli(["content", "prune", "--store", store]);
      expect(none.stdout).toContain("removed 0 ingests, 0 blobs");

      const dry = await runCli(["content", "prune", "--dry-run", "--ingest-age", "0", "--blob-age", "0", "--store", store]);
      expect(dry.stdout).toContain(`blob ${strayDigest}`);
      expect(dry.stdout).toContain("ingest abandoned");
      expect((await runCli(["content", "ls", "-q", "--store", store])).stdout).toContain(strayDigest);

      await new Promise((r) => setTimeout(r, 20));
      const pruned = await runCli(["content", "prune", "--json", "--ingest-age", "0", "--blob-age", "0", "--store", store]);
      expect(pruned.code, pruned.stderr).toBe(0);
      const records = pruned.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(records).toContainEqual({ type: "ingest", ref: "abandoned" });
      expect(records).toContainEqual({ type: "blob", digest: strayDigest, size: stray.length });
      expect(records).toHaveLength(2);

      const left = new Set((await runCli(["content", "ls", "-q", "--store", store])).stdout.trim().split("\n"));
      const image: Descriptor[] = [img.root, ...img.configs, ...img.layers];
      expect(left).toEqual(new Set(image.map((d) => d.digest)));
      expect((await runCli(["content", "active", "-q", "--store", store])).stdout).toBe("");
    });

    it("keeps unnamed referrers of a reachable manifest (and what they reach), removes those of an unreachable one", async () => {
      const store = join(tmp.dir, "s5");
      const img = await seedImage(reg.host, "prune/ref:1", join(tmp.dir, "prune-ref-layout"), { layers: 1, layerSize: 20_000 });
      expect((await runCli(["pull", img.reference, "-q", "--store", store])).code).toBe(0);
      const fs = await openFsStore(store);
      const put = async (mediaType: string, data: Buffer): Promise<Descriptor> => {
        const d: Descriptor = { mediaType, digest: digestOf(data), size: data.length };
        await writeBlob(fs, ingestRef(d), Readable.from([data]), d);
        return d;
      };
      const artifact = async (subject: Descriptor, text: string): Promise<{ manifest: Descriptor; blob: Descriptor }> => {
        const empty = await put(MediaTypes.OciEmpty, Buffer.from("{}"));
        const blob = await put("text/plain", Buffer.from(text));
        const doc = {
          schemaVersion: 2,
          mediaType: MediaTypes.OciManifest,
          artifactType: "application/spdx+json",
          config: { mediaType: empty.mediaType, digest: empty.digest, size: empty.size },
          layers: [{ mediaType: blob.mediaType, digest: blob.digest, size: blob.size }],
          subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
        };
        return { manifest: await put(MediaTypes.OciManifest, Buffer.from(JSON.stringify(doc))), blob };
      };
      // An SBOM of the pulled image, a signature of that SBOM, and an SBOM of something absent.
      const sbom = await artifact(img.root, "sbom of the image");
      const sig = await artifact(sbom.manifest, "signature of the sbom");
      const orphan = await artifact({ mediaType: MediaTypes.OciManifest, digest: digestOf("gone"), size: 4 }, "sbom of nothing");

      await new Promise((r) => setTimeout(r, 20));
      const pruned = await runCli(["content", "prune", "--json", "--blob-age", "0", "--store", store]);
      expect(pruned.code, pruned.stderr).toBe(0);
      const removed = pruned.stdout.trim().split("\n").map((l) => (JSON.parse(l) as { digest?: string }).digest);
      expect(new Set(removed)).toEqual(new Set([orphan.manifest.digest, orphan.blob.digest]));
      const left = new Set((await runCli(["content", "ls", "-q", "--store", store])).stdout.trim().split("\n"));
      for (const d of [sbom.manifest, sbom.blob, sig.manifest, sig.blob, img.root, ...img.layers]) expect(left.has(d.digest)).toBe(true);
    });
  });
});
