/**
 * Documents written by real tools (umoci, skopeo, and the repository's scripts/make-image.sh) must
 * parse, walk and select with ferry's content model. Skips when the tools are missing, except
 * under CI=true where a missing tool is a failure.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { childrenOf, isManifestDescriptor } from "../src/children.ts";
import type { Descriptor } from "../src/descriptor.ts";
import { digestOf } from "../src/digest.ts";
import type { ImageConfig } from "../src/manifest.ts";
import { MediaTypes, isConfigMediaType } from "../src/media-types.ts";
import { formatPlatform, selectManifests } from "../src/platform.ts";
import { parseImageConfig, parseManifest } from "../src/validate-manifest.ts";

function have(tool: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

const CI = process.env.CI === "true";
const tools = ["umoci", "skopeo", "jq"];
const missing = tools.filter((t) => !have(t));
// The repository's own image builder (always present in a checkout, so these cases never skip).
const makeImage = new URL("../../../scripts/make-image.sh", import.meta.url).pathname;

if (CI && missing.length > 0) {
  describe("real tool output", () => {
    it("has its tools under CI", () => {
      expect(missing, `missing tools: ${missing.join(", ")}`).toEqual([]);
    });
  });
}

interface Walked {
  nodes: { desc: Descriptor; kind: string }[];
  configs: ImageConfig[];
  leaves: Descriptor[];
}

/** Walk a content graph from `root`, reading blobs with `read`, checking every digest. */
function walk(root: Descriptor, read: (d: Descriptor) => Uint8Array): Walked {
  const out: Walked = { nodes: [], configs: [], leaves: [] };
  const visit = (desc: Descriptor): void => {
    if (isManifestDescriptor(desc)) {
      const bytes = read(desc);
      expect(digestOf(bytes)).toBe(desc.digest);
      expect(bytes.byteLength).toBe(desc.size);
      out.nodes.push({ desc, kind: parseManifest(bytes, { mediaType: desc.mediaType }).kind });
      for (const child of childrenOf(desc, bytes)) visit(child);
    } else if (isConfigMediaType(desc.mediaType)) {
      const bytes = read(desc);
      expect(digestOf(bytes)).toBe(desc.digest);
      out.configs.push(parseImageConfig(bytes));
    } else {
      out.leaves.push(desc);
    }
  };
  visit(root);
  return out;
}

const ociBlob = (layout: string) => (d: Descriptor) => readFileSync(join(layout, "blobs", ...d.digest.split(":")));

describe.skipIf(missing.length > 0)("real tool output", () => {
  let work = "";
  const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { cwd: work, stdio: ["ignore", "pipe", "pipe"] });

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), "ferry-manifest-tools-"));
    writeFileSync(join(work, "f.txt"), "hello\n");
    run("umoci", ["init", "--layout", "lay"]);
    run("umoci", ["new", "--image", "lay:empty"]);
    run("umoci", ["new", "--image", "lay:app"]);
    run("umoci", ["insert", "--rootless", "--image", "lay:app", "f.txt", "/f.txt"]);
    run("umoci", ["config", "--image", "lay:app", "--config.env", "A=B", "--config.cmd", "/bin/sh",
      "--config.exposedports", "80/tcp", "--config.volume", "/data", "--config.label", "k=v",
      "--architecture", "arm64", "--os", "linux", "--author", "ferry",
      "--manifest.annotation", "org.example.note=hello"]);
    run("skopeo", ["copy", "--format", "v2s2", "oci:lay:app", "dir:docker-dir"]);
  });

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("umoci's OCI layout: index.json, manifests without mediaType, configs, an empty image", () => {
    const layout = join(work, "lay");
    const top = parseManifest(readFileSync(join(layout, "index.json")));
    expect(top.kind).toBe("index");
    if (top.kind !== "index") return;
    const byTag = new Map(top.index.manifests.map((d) => [d.annotations?.["org.opencontainers.image.ref.name"], d]));
    expect([...byTag.keys()].sort()).toEqual(["app", "empty"]);

    const app = walk(byTag.get("app") as Descriptor, ociBlob(layout));
    expect(app.nodes.map((n) => n.kind)).toEqual(["manifest"]);
    expect(app.leaves.map((l) => l.mediaType)).toEqual([MediaTypes.OciLayerGzip]);
    const [cfg] = app.configs;
    expect(cfg).toMatchObject({ architecture: "arm64", os: "linux", author: "ferry" });
    expect(cfg?.config?.Env).toEqual(["A=B"]);
    expect(cfg?.config?.ExposedPorts).toEqual({ "80/tcp": {} });
    expect(cfg?.rootfs.diff_ids).toHaveLength(1);
    const manifestBytes = ociBlob(layout)(byTag.get("app") as Descriptor);
    const m = parseManifest(manifestBytes);
    expect(m.kind === "manifest" && m.manifest.annotations?.["org.example.note"]).toBe("hello");

    // `umoci new` writes an image with no layers: valid for ferry (OCI 1.1), leaves = none.
    const empty = walk(byTag.get("empty") as Descriptor, ociBlob(layout));
    expect(empty.leaves).toEqual([]);
    expect(empty.configs[0]?.rootfs.diff_ids).toEqual([]);
  });

  it("skopeo's Docker schema 2 conversion", () => {
    const dir = join(work, "docker-dir");
    const bytes = readFileSync(join(dir, "manifest.json"));
    const root: Descriptor = { mediaType: MediaTypes.DockerManifest, digest: digestOf(bytes), size: bytes.byteLength };
    const w = walk(root, (d) => (d.digest === root.digest ? bytes : readFileSync(join(dir, d.digest.split(":")[1] as string))));
    expect(w.nodes).toEqual([{ desc: root, kind: "manifest" }]);
    expect(w.leaves.map((l) => l.mediaType)).toEqual([MediaTypes.DockerLayerGzip]);
    expect(w.configs[0]).toMatchObject({ architecture: "arm64", os: "linux" });
    // A Docker manifest must not pass as OCI when the server says OCI.
    expect(() => parseManifest(bytes, { mediaType: MediaTypes.OciManifest })).toThrow(/document says/);
  });

  it("make-image.sh multi-platform OCI index: walk and pick a platform", () => {
    execFileSync("bash", [makeImage, "--platforms", "linux/amd64,linux/arm64/v8,linux/arm/v7", "--no-push",
      "--layout", join(work, "multi"), "unused", "r/x:1", "1", "4K"], { stdio: "ignore" });
    const layout = join(work, "multi");
    const top = parseManifest(readFileSync(join(layout, "index.json")));
    if (top.kind !== "index") return expect.unreachable();
    const imageIndex = top.index.manifests[0] as Descriptor;
    const w = walk(imageIndex, ociBlob(layout));
    expect(w.nodes.map((n) => n.kind)).toEqual(["index", "manifest", "manifest", "manifest"]);
    expect(w.configs.map((c) => `${c.os}/${c.architecture}`)).toEqual(["linux/amd64", "linux/arm64", "linux/arm"]);

    const idx = parseManifest(ociBlob(layout)(imageIndex));
    if (idx.kind !== "index") return expect.unreachable();
    const pick = (spec: string) => selectManifests(idx.index.manifests, spec).map((d) => formatPlatform(d.platform!));
    expect(pick("linux/arm64")).toEqual(["linux/arm64/v8", "linux/arm/v7"]);
    expect(pick("linux/amd64")).toEqual(["linux/amd64"]);
    expect(pick("linux/arm/v6")).toEqual([]);
  });

  it("make-image.sh Docker manifest list in an OCI layout", () => {
    const dir = join(work, "docker-multi");
    execFileSync("bash", [makeImage, "--index", "--format", "docker", "--no-push", "--layout", dir, "unused", "r/x:1", "1", "4K"], {
      stdio: "ignore",
    });
    const top = parseManifest(readFileSync(join(dir, "index.json")));
    if (top.kind !== "index") return expect.unreachable();
    const root = top.index.manifests[0] as Descriptor;
    expect(root.mediaType).toBe(MediaTypes.DockerManifestList);
    const w = walk(root, ociBlob(dir));
    expect(w.nodes.map((n) => n.desc.mediaType)).toEqual([
      MediaTypes.DockerManifestList,
      MediaTypes.DockerManifest,
      MediaTypes.DockerManifest,
    ]);
    expect(w.configs.map((c) => c.architecture)).toEqual(["amd64", "arm64"]);
    expect(w.leaves.every((l) => l.mediaType === MediaTypes.DockerLayerGzip)).toBe(true);
  });
});
