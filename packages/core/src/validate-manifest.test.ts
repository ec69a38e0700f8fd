import { describe, expect, it } from "vitest";
import { digestOf } from "./digest.ts";
import { FerryError } from "./errors.ts";
import { MaxManifestBytes } from "./manifest.ts";
import { MediaTypes } from "./media-types.ts";
import { parseImageConfig, parseManifest, validateDescriptor, validatePlatform } from "./validate-manifest.ts";

// Test documents are mutated freely to build bad cases.
type J = Record<string, any>;

const D1 = digestOf("one");
const D2 = digestOf("two");
const D3 = digestOf("three");

function manifest(): J {
  return {
    schemaVersion: 2,
    mediaType: MediaTypes.OciManifest,
    config: { mediaType: MediaTypes.OciConfig, digest: D1, size: 10 },
    layers: [
      { mediaType: MediaTypes.OciLayerGzip, digest: D2, size: 20 },
      { mediaType: MediaTypes.OciLayerGzip, digest: D3, size: 30, annotations: { "org.example.k": "v" } },
      { mediaType: MediaTypes.OciLayerZstd, digest: D3, size: 30 },
    ],
    annotations: { "org.opencontainers.image.created": "2024-01-01T00:00:00Z" },
  };
}

function index(): J {
  return {
    schemaVersion: 2,
    mediaType: MediaTypes.OciIndex,
    manifests: [
      { mediaType: MediaTypes.OciManifest, digest: D1, size: 500, platform: { architecture: "amd64", os: "linux" } },
      {
        mediaType: MediaTypes.OciManifest,
        digest: D2,
        size: 501,
        platform: { architecture: "arm64", os: "linux", variant: "v8", "os.features": ["x"], features: ["y"] },
      },
    ],
  };
}

function config(): J {
  return {
    created: "2024-01-01T00:00:00.123456789Z",
    author: "someone",
    architecture: "amd64",
    os: "linux",
    config: {
      User: "1000:1000",
      ExposedPorts: { "8080/tcp": {} },
      Env: ["PATH=/usr/bin"],
      Entrypoint: ["/bin/sh"],
      Cmd: null,
      Volumes: { "/data": {} },
      WorkingDir: "/",
      Labels: { a: "b" },
      StopSignal: "SIGTERM",
      ArgsEscaped: false,
    },
    rootfs: { type: "layers", diff_ids: [D1, D2] },
    history: [{ created: "2024-01-01T00:00:00Z", created_by: "RUN x", empty_layer: true }, { comment: "c" }],
    container_config: { Hostname: "kept" },
  };
}

const enc = (v: unknown): Uint8Array => new TextEncoder().encode(typeof v === "string" ? v : JSON.stringify(v));

function errorOf(fn: () => unknown): FerryError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(FerryError);
    expect((err as FerryError).code).toBe("InvalidManifest");
    return err as FerryError;
  }
  return expect.unreachable("expected an InvalidManifest error") as never;
}

describe("parseManifest: accepts", () => {
  it("an OCI image manifest, returned with unknown fields kept", () => {
    const doc = { ...manifest(), "x-extra": 1 };
    const r = parseManifest(enc(doc));
    expect(r.kind).toBe("manifest");
    if (r.kind !== "manifest") return;
    expect(r.mediaType).toBe(MediaTypes.OciManifest);
    expect(r.manifest.layers).toHaveLength(3);
    expect(r.manifest.config.digest).toBe(D1);
    expect((r.manifest as unknown as J)["x-extra"]).toBe(1);
  });

  it("an OCI index", () => {
    const r = parseManifest(JSON.stringify(index()));
    expect(r.kind).toBe("index");
    if (r.kind !== "index") return;
    expect(r.index.manifests.map((m) => m.platform?.architecture)).toEqual(["amd64", "arm64"]);
  });

  it("Docker schema 2 manifest and manifest list", () => {
    const m = manifest();
    m.mediaType = MediaTypes.DockerManifest;
    m.config.mediaType = MediaTypes.DockerConfig;
    for (const l of m.layers) l.mediaType = MediaTypes.DockerLayerGzip;
    const rm = parseManifest(enc(m), { mediaType: MediaTypes.DockerManifest });
    expect(rm).toMatchObject({ kind: "manifest", mediaType: MediaTypes.DockerManifest });
    const ix = index();
    ix.mediaType = MediaTypes.DockerManifestList;
    const ri = parseManifest(enc(ix), { mediaType: `${MediaTypes.DockerManifestList}; charset=utf-8` });
    expect(ri).toMatchObject({ kind: "index", mediaType: MediaTypes.DockerManifestList });
  });

  it.each([
    ["manifest without mediaType, detected by fields", () => ({ ...manifest(), mediaType: undefined }), undefined, "manifest", MediaTypes.OciManifest],
    ["index without mediaType, detected by fields", () => ({ ...index(), mediaType: undefined }), undefined, "index", MediaTypes.OciIndex],
    ["manifest without mediaType, kind from Content-Type", () => ({ ...manifest(), mediaType: undefined }), MediaTypes.OciManifest, "manifest", MediaTypes.OciManifest],
    ["index served as application/json", index, "application/json", "index", MediaTypes.OciIndex],
    ["manifest served as octet-stream", manifest, "application/octet-stream", "manifest", MediaTypes.OciManifest],
    ["Content-Type with parameters and upper case", manifest, "Application/VND.oci.image.manifest.v1+json; charset=utf-8", "manifest", MediaTypes.OciManifest],
    ["empty layers (artifact)", () => ({ ...manifest(), layers: [] }), undefined, "manifest", MediaTypes.OciManifest],
    ["empty index", () => ({ ...index(), manifests: [] }), undefined, "index", MediaTypes.OciIndex],
    ["size 0 and MAX_SAFE_INTEGER", () => { const m = manifest(); m.layers[0].size = 0; m.layers[1].size = Number.MAX_SAFE_INTEGER; return m; }, undefined, "manifest", MediaTypes.OciManifest],
    ["sha512 digests", () => { const m = manifest(); m.layers[0].digest = digestOf("x", "sha512"); return m; }, undefined, "manifest", MediaTypes.OciManifest],
    ["artifactType and subject", () => ({ ...manifest(), artifactType: "application/vnd.example.sbom", subject: { mediaType: MediaTypes.OciManifest, digest: D1, size: 1 } }), undefined, "manifest", MediaTypes.OciManifest],
    ["urls on a non-distributable layer", () => { const m = manifest(); m.layers[0].urls = ["https://example.com/layer"]; return m; }, undefined, "manifest", MediaTypes.OciManifest],
    ["descriptor data matching digest and size", () => { const m = manifest(); m.config = { mediaType: MediaTypes.OciEmpty, digest: digestOf("{}"), size: 2, data: "e30=" }; return m; }, undefined, "manifest", MediaTypes.OciManifest],
    ["index with subject, artifactType and annotations", () => ({ ...index(), artifactType: "application/x.y", subject: { mediaType: MediaTypes.OciIndex, digest: D3, size: 3 }, annotations: { a: "b" } }), undefined, "index", MediaTypes.OciIndex],
  ] as const)("%s", (_name, make, mediaType, kind, resolved) => {
    const r = parseManifest(enc(make()), mediaType === undefined ? {} : { mediaType });
    expect(r.kind).toBe(kind);
    expect(r.mediaType).toBe(resolved);
  });
});

describe("parseManifest: rejects with the field path", () => {
  it.each<[string, () => unknown, string, RegExp?, string?]>([
    // document level
    ["invalid JSON", () => "{", "$", /invalid JSON/],
    ["a JSON array", () => [], "$", /must be an object, got array/],
    ["JSON null", () => "null", "$", /must be an object, got null/],
    ["missing schemaVersion", () => ({ ...manifest(), schemaVersion: undefined }), "schemaVersion", /required/],
    ["schemaVersion 1", () => ({ ...manifest(), schemaVersion: 1 }), "schemaVersion", /schema 1/],
    ["schemaVersion 3", () => ({ ...manifest(), schemaVersion: 3 }), "schemaVersion", /must be 2, got 3/],
    ["schemaVersion as a string", () => ({ ...manifest(), schemaVersion: "2" }), "schemaVersion", /must be 2/],
    ["neither kind", () => ({ schemaVersion: 2 }), "$", /neither/],
    ["both kinds without a mediaType", () => ({ ...manifest(), mediaType: undefined, manifests: [] }), "$", /ambiguous/],
    // media types
    ["unknown document mediaType", () => ({ ...manifest(), mediaType: "application/vnd.example+json" }), "mediaType", /not an image manifest or index/],
    ["malformed document mediaType", () => ({ ...manifest(), mediaType: "nonsense" }), "mediaType", /invalid media type/],
    ["mediaType not a string", () => ({ ...manifest(), mediaType: 5 }), "mediaType", /must be a string/],
    ["document OCI manifest served as index", manifest, "mediaType", /served as "application\/vnd.oci.image.index.v1\+json"/, MediaTypes.OciIndex],
    ["document OCI manifest served as Docker manifest", manifest, "mediaType", /document says/, MediaTypes.DockerManifest],
    ["Docker type served but document has no mediaType", () => ({ ...manifest(), mediaType: undefined }), "mediaType", /required in a Docker document/, MediaTypes.DockerManifest],
    ["served as Docker schema 1", manifest, "mediaType", /schema 1/, "application/vnd.docker.distribution.manifest.v1+prettyjws"],
    ["served as a layer type", manifest, "mediaType", /not an image manifest or index/, MediaTypes.OciLayerGzip],
    ["manifest carrying manifests", () => ({ ...manifest(), manifests: [] }), "manifests", /not allowed in an image manifest/],
    ["index carrying layers", () => ({ ...index(), layers: [] }), "layers", /not allowed in an index/],
    ["index carrying config", () => ({ ...index(), config: manifest().config }), "config", /not allowed in an index/],
    ["manifest typed by Content-Type carrying manifests", () => ({ ...manifest(), mediaType: undefined, manifests: [] }), "manifests", /not allowed/, MediaTypes.OciManifest],
    // manifest fields
    ["missing config", () => ({ ...manifest(), config: undefined }), "config", /required/],
    ["config not an object", () => ({ ...manifest(), config: "x" }), "config", /must be an object, got string/],
    ["missing layers", () => ({ ...manifest(), layers: undefined }), "layers", /required/],
    ["layers not an array", () => ({ ...manifest(), layers: {} }), "layers", /must be an array, got object/],
    ["bad layer digest", () => { const m = manifest(); m.layers[2].digest = "sha256:zz"; return m; }, "layers[2].digest", /^layers\[2\]\.digest: invalid digest "sha256:zz"/],
    ["unsupported digest algorithm", () => { const m = manifest(); m.config.digest = "md5:d41d8cd98f00b204e9800998ecf8427e"; return m; }, "config.digest", /unsupported algorithm/],
    ["uppercase digest", () => { const m = manifest(); m.layers[0].digest = D2.toUpperCase(); return m; }, "layers[0].digest", /invalid digest/],
    ["missing digest", () => { const m = manifest(); delete m.layers[1].digest; return m; }, "layers[1].digest", /required/],
    ["missing mediaType in descriptor", () => { const m = manifest(); delete m.config.mediaType; return m; }, "config.mediaType", /required/],
    ["bad descriptor mediaType", () => { const m = manifest(); m.layers[0].mediaType = "a b/c"; return m; }, "layers[0].mediaType", /invalid media type/],
    ["missing size", () => { const m = manifest(); delete m.layers[0].size; return m; }, "layers[0].size", /required/],
    ["negative size", () => { const m = manifest(); m.layers[0].size = -1; return m; }, "layers[0].size", /integer/],
    ["fractional size", () => { const m = manifest(); m.layers[0].size = 1.5; return m; }, "layers[0].size", /integer/],
    ["size as a string", () => { const m = manifest(); m.layers[0].size = "10"; return m; }, "layers[0].size", /integer/],
    ["size above MAX_SAFE_INTEGER", () => { const m = manifest(); m.layers[1].size = 2 ** 53; return m; }, "layers[1].size", /integer/],
    ["urls not an array", () => { const m = manifest(); m.layers[0].urls = "https://x"; return m; }, "layers[0].urls", /must be an array/],
    ["urls entry not a URL", () => { const m = manifest(); m.layers[0].urls = ["https://ok", "not a url"]; return m; }, "layers[0].urls[1]", /not a valid URL/],
    ["descriptor annotation value not a string", () => { const m = manifest(); m.layers[1].annotations["org.example.k"] = 1; return m; }, 'layers[1].annotations["org.example.k"]', /must be a string/],
    ["top-level annotation value not a string", () => ({ ...manifest(), annotations: { "a.b": true } }), 'annotations["a.b"]', /must be a string/],
    ["annotations an array", () => ({ ...manifest(), annotations: [] }), "annotations", /must be an object/],
    ["bad artifactType", () => ({ ...manifest(), artifactType: "" }), "artifactType", /invalid media type/],
    ["bad subject digest", () => ({ ...manifest(), subject: { mediaType: MediaTypes.OciManifest, digest: "sha256:1", size: 1 } }), "subject.digest", /invalid digest/],
    ["data not base64", () => { const m = manifest(); m.config.data = "!!!"; return m; }, "config.data", /base64/],
    ["data of the wrong size", () => { const m = manifest(); m.config = { mediaType: MediaTypes.OciEmpty, digest: digestOf("{}"), size: 3, data: "e30=" }; return m; }, "config.data", /2 bytes but size is 3/],
    ["data of the wrong digest", () => { const m = manifest(); m.config = { mediaType: MediaTypes.OciEmpty, digest: D1, size: 2, data: "e30=" }; return m; }, "config.data", /content has digest/],
    // index fields
    ["missing manifests", () => ({ schemaVersion: 2, mediaType: MediaTypes.OciIndex }), "manifests", /required/],
    ["manifests not an array", () => ({ ...index(), manifests: null }), "manifests", /must be an array, got null/],
    ["index entry bad digest", () => { const x = index(); x.manifests[1].digest = "sha256:"; return x; }, "manifests[1].digest", /invalid digest/],
    ["platform without os", () => { const x = index(); delete x.manifests[0].platform.os; return x; }, "manifests[0].platform.os", /required/],
    ["platform with empty architecture", () => { const x = index(); x.manifests[0].platform.architecture = ""; return x; }, "manifests[0].platform.architecture", /must not be empty/],
    ["platform not an object", () => { const x = index(); x.manifests[0].platform = "linux/amd64"; return x; }, "manifests[0].platform", /must be an object/],
    ["platform variant not a string", () => { const x = index(); x.manifests[1].platform.variant = 8; return x; }, "manifests[1].platform.variant", /must be a string/],
    ["platform os.features with a number", () => { const x = index(); x.manifests[1].platform["os.features"] = ["a", 2]; return x; }, 'manifests[1].platform["os.features"][1]', /must be a string/],
    ["platform os.version not a string", () => { const x = index(); x.manifests[1].platform["os.version"] = 10; return x; }, 'manifests[1].platform["os.version"]', /must be a string/],
  ])("%s", (_name, make, field, message, mediaType) => {
    const doc = make();
    const err = errorOf(() => parseManifest(enc(doc), mediaType === undefined ? {} : { mediaType }));
    expect(err.details.field).toBe(field);
    expect(err.message.startsWith(`${field}: `)).toBe(true);
    if (message) expect(err.message).toMatch(message);
  });

  it("checks the size cap before parsing", () => {
    // Invalid JSON beyond the cap: the size error must win, proving the cap comes first.
    const big = new Uint8Array(MaxManifestBytes + 1).fill(0x7b);
    const err = errorOf(() => parseManifest(big));
    expect(err.details).toMatchObject({ field: "$", size: MaxManifestBytes + 1, limit: MaxManifestBytes });
    expect(err.message).toMatch(/over the 4194304-byte limit/);
    // Exactly at the cap passes the cap (then fails on JSON, not size).
    const atCap = new Uint8Array(MaxManifestBytes).fill(0x20);
    expect(errorOf(() => parseManifest(atCap)).message).toMatch(/invalid JSON/);
  });

  it("honours a custom maxSize", () => {
    const bytes = enc(manifest());
    expect(() => parseManifest(bytes, { maxSize: bytes.byteLength })).not.toThrow();
    expect(errorOf(() => parseManifest(bytes, { maxSize: bytes.byteLength - 1 })).details.field).toBe("$");
  });

  it("rejects invalid UTF-8 and a byte-order mark", () => {
    const bytes = enc(manifest());
    const broken = new Uint8Array([...bytes.slice(0, 20), 0xff, ...bytes.slice(20)]);
    expect(errorOf(() => parseManifest(broken)).message).toMatch(/UTF-8/);
    const bom = new Uint8Array([0xef, 0xbb, 0xbf, ...bytes]);
    expect(errorOf(() => parseManifest(bom)).message).toMatch(/invalid JSON/);
  });
});

describe("validateDescriptor / validatePlatform", () => {
  it("returns a valid descriptor typed", () => {
    const d = validateDescriptor({ mediaType: MediaTypes.OciLayer, digest: D1, size: 3 });
    expect(d.digest).toBe(D1);
  });

  it.each<[unknown, string]>([
    [null, "$"],
    [{ mediaType: MediaTypes.OciLayer, digest: D1 }, "size"],
    [{ mediaType: MediaTypes.OciLayer, digest: "sha256:x", size: 1 }, "digest"],
    [{ digest: D1, size: 1 }, "mediaType"],
  ])("rejects %j at %s", (value, field) => {
    expect(errorOf(() => validateDescriptor(value)).details.field).toBe(field);
  });

  it("prefixes paths with the field option", () => {
    const err = errorOf(() => validateDescriptor({ mediaType: "x/y", digest: D1, size: -2 }, { field: "blobs[4]" }));
    expect(err.message).toMatch(/^blobs\[4\]\.size: /);
  });

  it("validates a platform on its own", () => {
    expect(validatePlatform({ os: "linux", architecture: "arm", variant: "v7" }).variant).toBe("v7");
    expect(errorOf(() => validatePlatform({ os: "linux" })).details.field).toBe("architecture");
  });
});

describe("parseImageConfig", () => {
  it("accepts an OCI/Docker config and keeps unknown fields", () => {
    const c = parseImageConfig(enc(config()));
    expect(c.rootfs.diff_ids).toEqual([D1, D2]);
    expect(c.config?.ExposedPorts).toEqual({ "8080/tcp": {} });
    expect((c as unknown as J).container_config).toEqual({ Hostname: "kept" });
  });

  it.each<[string, () => J]>([
    ["minimal", () => ({ architecture: "arm64", os: "linux", rootfs: { type: "layers", diff_ids: [] } })],
    ["Docker nulls", () => ({ ...config(), config: { Env: null, Cmd: null, Entrypoint: null, Volumes: null, Labels: null } })],
    ["config null", () => ({ ...config(), config: null })],
    ["created with offset and space separator", () => ({ ...config(), created: "2024-02-03 04:05:06+01:00" })],
    ["os.version and os.features", () => ({ ...config(), os: "windows", "os.version": "10.0.17763.1", "os.features": ["win32k"] })],
  ])("accepts %s", (_n, make) => {
    expect(() => parseImageConfig(enc(make()))).not.toThrow();
  });

  it.each<[string, () => unknown, string]>([
    ["not an object", () => "[]", "$"],
    ["missing architecture", () => ({ ...config(), architecture: undefined }), "architecture"],
    ["os a number", () => ({ ...config(), os: 1 }), "os"],
    ["missing rootfs", () => ({ ...config(), rootfs: undefined }), "rootfs"],
    ["rootfs type wrong", () => ({ ...config(), rootfs: { type: "layer", diff_ids: [] } }), "rootfs.type"],
    ["missing diff_ids", () => ({ ...config(), rootfs: { type: "layers" } }), "rootfs.diff_ids"],
    ["bad diff_id", () => ({ ...config(), rootfs: { type: "layers", diff_ids: [D1, "sha256:bad"] } }), "rootfs.diff_ids[1]"],
    ["created not a date", () => ({ ...config(), created: "yesterday" }), "created"],
    ["created an impossible date", () => ({ ...config(), created: "2024-13-45T00:00:00Z" }), "created"],
    ["Env not an array", () => ({ ...config(), config: { Env: "A=B" } }), "config.Env"],
    ["Cmd with a number", () => ({ ...config(), config: { Cmd: ["a", 1] } }), "config.Cmd[1]"],
    ["ExposedPorts value not an object", () => ({ ...config(), config: { ExposedPorts: { "80/tcp": true } } }), 'config.ExposedPorts["80/tcp"]'],
    ["Labels value not a string", () => ({ ...config(), config: { Labels: { a: 1 } } }), "config.Labels.a"],
    ["ArgsEscaped not a boolean", () => ({ ...config(), config: { ArgsEscaped: "yes" } }), "config.ArgsEscaped"],
    ["User not a string", () => ({ ...config(), config: { User: 0 } }), "config.User"],
    ["history not an array", () => ({ ...config(), history: {} }), "history"],
    ["history entry empty_layer not a boolean", () => ({ ...config(), history: [{}, { empty_layer: 1 }] }), "history[1].empty_layer"],
    ["history created not a date", () => ({ ...config(), history: [{ created: "x" }] }), "history[0].created"],
  ])("rejects %s", (_n, make, field) => {
    const err = errorOf(() => parseImageConfig(enc(make())));
    expect(err.details).toMatchObject({ field, document: "config" });
  });

  it("has an 8 MiB default cap and a configurable one", () => {
    const small = enc(config());
    expect(errorOf(() => parseImageConfig(small, { maxSize: 10 })).details.field).toBe("$");
    // 5 MiB of history is over the manifest cap but under the config default.
    const big = config();
    big.history = [{ comment: "x".repeat(5 * 1024 * 1024) }];
    expect(() => parseImageConfig(enc(big))).not.toThrow();
    big.history = [{ comment: "x".repeat(9 * 1024 * 1024) }];
    expect(errorOf(() => parseImageConfig(enc(big))).details.limit).toBe(8 * 1024 * 1024);
  });
});
