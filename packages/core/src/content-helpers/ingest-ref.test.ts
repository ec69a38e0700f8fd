import { describe, expect, it } from "vitest";
import { digestOf } from "../digest.ts";
import { MediaTypes } from "../media-types.ts";
import { ingestKind, ingestRef } from "./ingest-ref.ts";

describe("ingestRef", () => {
  const digest = digestOf("x");
  it("derives the key from media type and digest", () => {
    expect(ingestRef({ mediaType: MediaTypes.OciIndex, digest })).toBe(`index-${digest}`);
    expect(ingestRef({ mediaType: MediaTypes.DockerManifestList, digest })).toBe(`index-${digest}`);
    expect(ingestRef({ mediaType: MediaTypes.OciManifest, digest })).toBe(`manifest-${digest}`);
    expect(ingestRef({ mediaType: MediaTypes.DockerManifest, digest })).toBe(`manifest-${digest}`);
    expect(ingestRef({ mediaType: MediaTypes.OciConfig, digest })).toBe(`config-${digest}`);
    expect(ingestRef({ mediaType: MediaTypes.DockerConfig, digest })).toBe(`config-${digest}`);
    expect(ingestRef({ mediaType: MediaTypes.OciLayerGzip, digest })).toBe(`layer-${digest}`);
    expect(ingestRef({ mediaType: "application/x-anything", digest })).toBe(`layer-${digest}`);
  });
  it("treats a missing media type as a layer", () => {
    expect(ingestKind(undefined)).toBe("layer");
  });
});
