/**
 * Interoperability with the real OCI tools: what FsStore writes, skopeo and umoci read, and
 * what they write, FsStore reads. Skipped when the tools are missing, except under CI=true.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { digestOf, type ContentStore, type Descriptor, type Digest } from "@ferry/core";
import { openFsStore, type FsStore } from "../src/index.ts";
import { tinyImage, type TinyImage } from "./oci-image.ts";
import { requireTools } from "@ferry/testkit";
import { tempDir } from "./helpers.ts";

const run = promisify(execFile);

async function putBlob(store: ContentStore, bytes: Uint8Array, desc: Descriptor): Promise<void> {
  const w = await store.writer({ ref: `put-${desc.digest}`, total: desc.size, expected: desc.digest });
  await w.write(bytes);
  await w.commit(desc.size, desc.digest);
}

async function putImage(store: FsStore, img: TinyImage, name: string): Promise<void> {
  for (const part of [img.layer, img.config, img.manifest]) await putBlob(store, part.bytes, part.descriptor);
  await store.setName(name, img.manifest.descriptor);
}

async function readBlob(store: ContentStore, digest: Digest): Promise<Buffer> {
  const r = await store.readerAt({ digest });
  try {
    return Buffer.from(await r.read(0, r.size));
  } finally {
    await r.close();
  }
}

/** Read an image by name from a store and check every blob against its digest. */
async function checkImage(store: FsStore, name: string): Promise<{ manifest: { config: Descriptor; layers: Descriptor[] }; blobs: Digest[] }> {
  const desc = await store.getName(name);
  const bytes = await readBlob(store, desc.digest);
  expect(digestOf(bytes)).toBe(desc.digest);
  expect(bytes.byteLength).toBe(desc.size);
  const manifest = JSON.parse(bytes.toString()) as { config: Descriptor; layers: Descriptor[] };
  const blobs: Digest[] = [desc.digest];
  for (const child of [manifest.config, ...manifest.layers]) {
    const b = await readBlob(store, child.digest);
    expect(digestOf(b)).toBe(child.digest);
    expect((await store.info(child.digest)).size).toBe(child.size);
    blobs.push(child.digest);
  }
  return { manifest, blobs };
}

let dir: { path: string; cleanup: () => Promise<void> };
beforeEach(async () => {
  dir = await tempDir();
});
afterEach(async () => {
  await dir.cleanup();
});

describe.runIf(requireTools("skopeo"))("skopeo interop", () => {
  it("skopeo inspects and copies an image ferry wrote (oci:DIR:name)", async () => {
    const root = join(dir.path, "ferry");
    const store = await openFsStore(root);
    const img = tinyImage();
    await putImage(store, img, "demo");
    // A half-written ingest and ferry's metadata must not bother skopeo.
    const w = await store.writer({ ref: "unfinished" });
    await w.write(Buffer.from("partial"));
    await w.close();

    const { stdout } = await run("skopeo", ["inspect", `oci:${root}:demo`]);
    const info = JSON.parse(stdout) as { Digest: string; Layers: string[]; Architecture: string; Os: string };
    expect(info.Digest).toBe(img.manifest.descriptor.digest);
    expect(info.Layers).toEqual([img.layer.descriptor.digest]);
    expect(info.Architecture).toBe("amd64");
    expect(info.Os).toBe("linux");
    const { stdout: raw } = await run("skopeo", ["inspect", "--raw", `oci:${root}:demo`]);
    expect(Buffer.from(raw)).toEqual(img.manifest.bytes);

    // skopeo copy re-reads and verifies every blob.
    const out = join(dir.path, "copy");
    await run("skopeo", ["--insecure-policy", "copy", "--preserve-digests", `oci:${root}:demo`, `oci:${out}:again`]);
    const copied = await openFsStore(out);
    const { blobs } = await checkImage(copied, "again");
    expect(blobs).toEqual([img.manifest.descriptor.digest, img.config.descriptor.digest, img.layer.descriptor.digest]);
  });

  it("ferry reads an image skopeo copied into a fresh oci: dir and into an existing ferry store", async () => {
    const src = join(dir.path, "src");
    await putImage(await openFsStore(src), tinyImage("generated\n"), "gen");
    // 1. Into a directory skopeo creates itself.
    const fresh = join(dir.path, "fresh");
    await run("skopeo", ["--insecure-policy", "copy", `oci:${src}:gen`, `oci:${fresh}:copied`]);
    const a = await openFsStore(fresh);
    const { blobs } = await checkImage(a, "copied");
    const walked: string[] = [];
    await a.walk((i) => void walked.push(i.digest));
    expect(walked.sort()).toEqual([...blobs].sort());
    expect((await a.listNames()).map((n) => n.name)).toEqual(["copied"]);
    // 2. Into a ferry store that already has a name: both names survive.
    const mine = join(dir.path, "mine");
    const store = await openFsStore(mine);
    await putImage(store, tinyImage("mine\n"), "mine");
    await run("skopeo", ["--insecure-policy", "copy", `oci:${src}:gen`, `oci:${mine}:theirs`]);
    expect((await store.listNames()).map((n) => n.name).sort()).toEqual(["mine", "theirs"]);
    await checkImage(store, "theirs");
    await checkImage(store, "mine");
  });
});

describe.runIf(requireTools("umoci"))("umoci interop", () => {
  it("umoci lists and stats an image ferry wrote", async () => {
    const root = join(dir.path, "ferry");
    const store = await openFsStore(root);
    const img = tinyImage();
    await putImage(store, img, "demo");
    await putImage(store, tinyImage("two\n"), "v2.0");
    const { stdout } = await run("umoci", ["ls", "--layout", root]);
    expect(stdout.trim().split("\n").sort()).toEqual(["demo", "v2.0"]);
    const { stdout: stat } = await run("umoci", ["stat", "--image", `${root}:demo`, "--json"]);
    const history = (JSON.parse(stat) as { history: Array<{ created_by?: string; layer?: { digest: string } }> }).history;
    expect(history[0]?.created_by).toBe("ferry store-fs test");
    // Unpacking checks the layer digest and its diff_id, and extracts the file.
    const bundle = join(dir.path, "bundle");
    await run("umoci", ["unpack", "--rootless", "--image", `${root}:demo`, bundle]);
    expect(await readFile(join(bundle, "rootfs", "hello.txt"), "utf8")).toBe("hello from ferry\n");
  });

  it("ferry reads an image umoci created, and umoci sees names ferry adds to its layout", async () => {
    const root = join(dir.path, "umoci");
    await run("umoci", ["init", "--layout", root]);
    await run("umoci", ["new", "--image", `${root}:fresh`]);
    const store = await openFsStore(root);
    const { manifest } = await checkImage(store, "fresh");
    expect(manifest.layers).toEqual([]);
    // Add a name with ferry; umoci must list both.
    await store.setName("added", await store.getName("fresh"));
    const { stdout } = await run("umoci", ["ls", "--layout", root]);
    expect(stdout.trim().split("\n").sort()).toEqual(["added", "fresh"]);
  });
});
