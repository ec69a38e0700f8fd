import { describe, expect, it } from "vitest";
import { childrenOf, childrenOfParsed, isManifestDescriptor } from "./children.ts";
import type { Descriptor } from "./descriptor.ts";
import { digestOf } from "./digest.ts";
import { FerryError } from "./errors.ts";
import type { ImageIndex, ImageManifest } from "./manifest.ts";
import { MediaTypes } from "./media-types.ts";
import { parseManifest } from "./validate-manifest.ts";

const desc = (mediaType: string, name: string, extra: Partial<Descriptor> = {}): Descriptor => ({
  mediaType,
  digest: digestOf(name),
  size: name.length,
  ...extra,
});

const config = desc(MediaTypes.OciConfig, "config");
const layers = [desc(MediaTypes.OciLayerGzip, "l0"), desc(MediaTypes.OciLayerGzip, "l1"), desc(MediaTypes.OciLayerZstd, "l2")];
const subject = desc(MediaTypes.OciManifest, "subject");

const manifest: ImageManifest = { schemaVersion: 2, mediaType: MediaTypes.OciManifest, config, layers };
const index: ImageIndex = {
  schemaVersion: 2,
  mediaType: MediaTypes.OciIndex,
  manifests: [
    desc(MediaTypes.OciManifest, "m-amd64", { platform: { os: "linux", architecture: "amd64" } }),
    desc(MediaTypes.OciIndex, "nested"),
    desc("application/vnd.example.artifact", "artifact"),
  ],
};

const bytes = (doc: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(doc));
const nodeFor = (doc: object, mediaType = (doc as { mediaType?: string }).mediaType ?? ""): Descriptor => {
  const b = bytes(doc);
  return { mediaType, digest: digestOf(b), size: b.byteLength };
};

describe("childrenOf", () => {
  it("index → its manifests in order", () => {
    expect(childrenOf(nodeFor(index), bytes(index))).toEqual(index.manifests);
  });

  it("manifest → config, then layers in order", () => {
    expect(childrenOf(nodeFor(manifest), bytes(manifest))).toEqual([config, ...layers]);
  });

  it("manifest with subject → config, layers, then subject", () => {
    const m = { ...manifest, subject };
    expect(childrenOf(nodeFor(m), bytes(m))).toEqual([config, ...layers, subject]);
  });

  it("index with subject → manifests, then subject", () => {
    const x = { ...index, subject };
    expect(childrenOf(nodeFor(x), bytes(x))).toEqual([...index.manifests, subject]);
  });

  it("Docker manifest list and manifest", () => {
    const list = { ...index, mediaType: MediaTypes.DockerManifestList };
    expect(childrenOf(nodeFor(list), bytes(list))).toHaveLength(3);
    const dm = { ...manifest, mediaType: MediaTypes.DockerManifest, config: { ...config, mediaType: MediaTypes.DockerConfig } };
    expect(childrenOf(nodeFor(dm), bytes(dm)).map((d) => d.mediaType)).toEqual([
      MediaTypes.DockerConfig,
      ...layers.map((l) => l.mediaType),
    ]);
  });

  it.each([MediaTypes.OciLayerGzip, MediaTypes.OciConfig, MediaTypes.DockerConfig, MediaTypes.OciEmpty, "application/vnd.example.artifact"])(
    "%s → no children, bytes not parsed",
    (mt) => {
      // Garbage bytes prove leaves are not parsed.
      expect(childrenOf({ mediaType: mt, digest: digestOf("x"), size: 1 }, "\u0000not json")).toEqual([]);
    },
  );

  it("returns a fresh array the caller may mutate", () => {
    const kids = childrenOf(nodeFor(manifest), bytes(manifest));
    kids.pop();
    expect(childrenOf(nodeFor(manifest), bytes(manifest))).toHaveLength(4);
  });

  it("rejects bytes of the other kind than the descriptor says", () => {
    try {
      childrenOf(nodeFor(manifest, MediaTypes.OciIndex), bytes(manifest));
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(FerryError);
      expect((err as FerryError).code).toBe("InvalidManifest");
      expect((err as FerryError).details.field).toBe("mediaType");
    }
  });

  it("uses the descriptor's type when the document has none", () => {
    const { mediaType: _drop, ...bare } = manifest;
    expect(childrenOf(nodeFor(bare, MediaTypes.OciManifest), bytes(bare))).toHaveLength(4);
    // A manifest without mediaType but with `manifests` must not pass as an index.
    const sneaky = { ...bare, manifests: index.manifests };
    expect(() => childrenOf(nodeFor(sneaky, MediaTypes.OciIndex), bytes(sneaky))).toThrow(/not allowed in an index/);
  });

  it("honours maxSize", () => {
    const b = bytes(manifest);
    expect(() => childrenOf(nodeFor(manifest), b, { maxSize: b.byteLength - 1 })).toThrow(/byte limit/);
  });

  it("childrenOfParsed agrees with childrenOf", () => {
    expect(childrenOfParsed(parseManifest(bytes(index)))).toEqual(childrenOf(nodeFor(index), bytes(index)));
  });
});

describe("isManifestDescriptor", () => {
  it.each<[string, boolean]>([
    [MediaTypes.OciManifest, true],
    [MediaTypes.OciIndex, true],
    [MediaTypes.DockerManifest, true],
    [MediaTypes.DockerManifestList, true],
    [MediaTypes.OciConfig, false],
    [MediaTypes.OciLayerGzip, false],
    ["application/vnd.docker.distribution.manifest.v1+prettyjws", false],
    ["", false],
  ])("%s → %s", (mt, want) => {
    expect(isManifestDescriptor({ mediaType: mt })).toBe(want);
  });
});
