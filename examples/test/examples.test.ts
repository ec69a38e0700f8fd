/**
 * Every example, run two ways against local registries: as its own process with no arguments
 * (it starts a registry and seeds an image itself, as its README line promises), and in this
 * process through its exported function, where the results can be checked in depth.
 */
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { digestOf, type Descriptor } from "@ferry/core";
import { createRegistryResolver } from "@ferry/fetcher";
import { openFsStore } from "@ferry/store-fs";
import { hasTool } from "@ferry/testkit";
import { copyImage } from "../copy-registries.ts";
import { archiveImage, TarIngester } from "../custom-ingester.ts";
import { seedImage, startLocalRegistry, type LocalRegistry, type SeededImage } from "../lib/setup.ts";
import { pullWithProgress } from "../pull-progress.ts";
import { DefaultArtifactType, pushDirectory } from "../push-artifact.ts";
import { summarisePull } from "../status-rxjs.ts";
import { scanLayers } from "../read-into.ts";
import { runExample } from "./run-example.ts";

let reg: LocalRegistry;
let tmp: string;
let img: SeededImage;

beforeAll(async () => {
  reg = await startLocalRegistry();
  tmp = await mkdtemp(join(tmpdir(), "ferry-examples-"));
  img = await seedImage(reg.host, "ex/app:1", { platforms: ["linux/amd64", "linux/arm64"], layers: 2, layerSize: 300_000 });
});
afterAll(async () => {
  await reg.close();
  await rm(tmp, { recursive: true, force: true });
});

describe("as processes, with no arguments", () => {
  it.each([
    ["pull-progress.ts", /^pulled 127\.0\.0\.1:\d+\/example\/pull:1 sha256:[0-9a-f]{64}: 5 blobs, \d+ bytes transferred$/m],
    ["push-artifact.ts", /^pushed 127\.0\.0\.1:\d+\/example\/artifact:1 sha256:[0-9a-f]{64} \(2 files, artifactType application\/vnd\.ferry\.example\.directory\.v1\)$/m],
    ["copy-registries.ts", /^again: 0 bytes moved, \d+ already there$/m],
    ["custom-ingester.ts", /^archived .* into image\.tar: 6 entries, \d+ bytes counted$/m],
    ["status-rxjs.ts", /^layer +6 blobs +\d+ bytes$/m],
    ["read-into.ts", /^sha256:[0-9a-f]{64} \d+ bytes in 1[23] reads into one 1024 KiB buffer, verified$/m],
  ])("%s", async (file, expected) => {
    const cwd = join(tmp, `run-${file}`);
    await mkdir(cwd);
    const r = await runExample(file, [], 120_000, cwd);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(expected);
  });
});

describe("pull-progress", () => {
  it("pulls the host platform into an OCI layout", async () => {
    const dir = join(tmp, "pp");
    const r = await pullWithProgress(img.reference, dir);
    expect(r.root.digest).toBe(img.root.digest);
    const store = await openFsStore(dir);
    expect((await store.getName(img.reference)).digest).toBe(img.root.digest);
    // The index plus one platform: manifest, config, 2 layers.
    expect(r.totals.blobsDone).toBe(5);
  });
});

describe("push-artifact", () => {
  it("pushes each file as a titled layer under an artifact manifest", async () => {
    const dir = join(tmp, "artifact");
    await mkdir(dir);
    await writeFile(join(dir, "a.txt"), "alpha\n");
    await writeFile(join(dir, "b.bin"), Buffer.alloc(100_000, 1));
    const ref = `${reg.host}/ex/artifact:v1`;
    const pushed = await pushDirectory(dir, ref);
    expect(pushed.outcomes).toMatchObject({ "a.txt": "pushed", "b.bin": "pushed", config: "pushed", manifest: "pushed" });

    const resolver = createRegistryResolver();
    try {
      const got = await resolver.fetchManifest(ref);
      expect(got.descriptor.digest).toBe(pushed.manifest.digest);
      const m = JSON.parse(Buffer.from(got.data).toString("utf8")) as { artifactType: string; config: Descriptor; layers: Descriptor[] };
      expect(m.artifactType).toBe(DefaultArtifactType);
      expect(m.config.mediaType).toBe("application/vnd.oci.empty.v1+json");
      expect(m.layers.map((l) => l.annotations?.["org.opencontainers.image.title"])).toEqual(["a.txt", "b.bin"]);
      expect(m.layers[0]?.digest).toBe(digestOf("alpha\n"));
      // The blob really is there, byte for byte.
      const fetcher = await resolver.fetcher(`${reg.host}/ex/artifact`);
      const chunks: Buffer[] = [];
      for await (const c of await fetcher.fetch(m.layers[1] as Descriptor)) chunks.push(c as Buffer);
      expect(Buffer.concat(chunks)).toEqual(Buffer.alloc(100_000, 1));
      // Pushing again finds everything in place.
      const again = await pushDirectory(dir, ref);
      expect(again.outcomes["b.bin"]).toBe("exists");
    } finally {
      await resolver.close();
    }
  });
});

describe("copy-registries", () => {
  it("copies every platform to a second registry; a second copy moves nothing", async () => {
    const other = await startLocalRegistry();
    try {
      const dst = `${other.host}/mirror/app:1`;
      const lines: string[] = [];
      const first = await copyImage(img.reference, dst, (l) => lines.push(l));
      expect(first.root.digest).toBe(img.root.digest);
      const all = [img.root, ...img.built.manifests, ...img.built.configs, ...img.built.layers];
      expect(first.totals.blobsDone).toBe(all.length);
      for (const d of all) expect(lines.some((l) => l.startsWith("done") && l.includes(d.digest))).toBe(true);
      const again = await copyImage(img.reference, dst, () => undefined);
      expect(again.totals.bytesTransferred).toBe(0);
    } finally {
      await other.close();
    }
  });
});

describe("custom-ingester", () => {
  it("writes an OCI layout tar that ferry (and skopeo) can read back, counting bytes", async () => {
    const out = join(tmp, "image.tar");
    const r = await archiveImage(img.reference, out);
    const all = [img.root, ...img.built.manifests, ...img.built.configs, ...img.built.layers];
    expect(r.bytes).toBe(all.reduce((a, d) => a + d.size, 0));
    expect(r.entries).toHaveLength(all.length + 2);

    const dir = join(tmp, "untarred");
    await mkdir(dir);
    execFileSync("tar", ["-xf", out, "-C", dir]);
    const store = await openFsStore(dir);
    expect((await store.getName("1")).digest).toBe(img.root.digest);
    for (const d of all) expect(digestOf(await readFile(join(dir, "blobs", "sha256", d.digest.slice(7))))).toBe(d.digest);
    if (hasTool("skopeo")) {
      const inspect = execFileSync("skopeo", ["inspect", "--raw", `oci-archive:${out}`]);
      expect(digestOf(inspect)).toBe(img.root.digest);
    }
  });

  it("refuses a writer without a size, and a wrong digest breaks the archive", async () => {
    const tar = new TarIngester(join(tmp, "bad.tar"));
    await expect(tar.writer({ ref: "x" })).rejects.toMatchObject({ code: "InvalidArgument" });
    const w = await tar.writer({ ref: "y", total: 3, expected: digestOf("abc") });
    await w.write(Buffer.from("abd"));
    await expect(w.commit(3)).rejects.toMatchObject({ code: "DigestMismatch" });
    expect(tar.broken).toBe(true);
    await tar.finish();
  });
});

describe("status-rxjs", () => {
  it("groups done blobs by kind and counts the ones that moved", async () => {
    const s = await summarisePull(img.reference, () => undefined);
    expect(s.root).toBe(img.root.digest);
    const byKind = Object.fromEntries(s.perKind.map((k) => [k.kind, k]));
    expect(byKind.layer).toEqual({ kind: "layer", blobs: 4, bytes: img.built.layers.reduce((a, d) => a + d.size, 0) });
    expect(byKind.manifest?.blobs).toBe(2);
    expect(byKind.config?.blobs).toBe(2);
    expect(byKind.index?.blobs).toBe(1);
    expect(s.moved).toBeGreaterThanOrEqual(4);
    expect(s.percentages.length).toBeGreaterThan(0);
    expect(s.percentages.at(-1)).toBe(100);
  });
});

describe("read-into", () => {
  it("reads every layer through one buffer; the hashes match the digests", async () => {
    const scans = await scanLayers(img.reference, 64 * 1024);
    const manifestLayers = img.built.layers.slice(0, 2);
    expect(scans.map((s) => s.digest)).toEqual(manifestLayers.map((d) => d.digest));
    for (const s of scans) {
      expect(s.sha256).toBe(s.digest);
      expect(s.reads).toBeGreaterThanOrEqual(Math.ceil(s.size / (64 * 1024)));
    }
    await expect(scanLayers(img.reference, 0)).rejects.toMatchObject({ code: "InvalidArgument" });
  });
});
