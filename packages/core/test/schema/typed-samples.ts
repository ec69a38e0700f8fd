/**
 * Sample documents written against ferry's TypeScript types. `pnpm typecheck` proves the types
 * describe real documents (excess-property checks catch misspelt or missing members);
 * oci-schema.test.ts proves the same objects pass the official schemas and ferry's validator.
 */
import {
  MediaTypes,
  digestOf,
  type DockerManifest,
  type DockerManifestList,
  type ImageConfig,
  type ImageIndex,
  type ImageManifest,
} from "../../src/index.ts";

const layerA = digestOf("layer-a");
const layerB = digestOf("layer-b");
const diffA = digestOf("diff-a");
const diffB = digestOf("diff-b");

export const typedConfig: ImageConfig = {
  created: "2024-05-06T07:08:09.123456789Z",
  author: "ferry tests",
  architecture: "arm64",
  variant: "v8",
  os: "linux",
  "os.version": "6.1",
  "os.features": ["feature"],
  config: {
    User: "1000:1000",
    ExposedPorts: { "8080/tcp": {}, "53/udp": {} },
    Env: ["PATH=/usr/local/bin:/usr/bin", "LANG=C.UTF-8"],
    Entrypoint: ["/bin/app"],
    Cmd: ["--serve"],
    Volumes: { "/var/lib/app": {} },
    WorkingDir: "/srv",
    Labels: { "org.opencontainers.image.title": "app" },
    StopSignal: "SIGTERM",
    ArgsEscaped: false,
  },
  rootfs: { type: "layers", diff_ids: [diffA, diffB] },
  history: [
    { created: "2024-05-06T07:08:09Z", created_by: "ADD rootfs.tar /", author: "a", comment: "base" },
    { created: "2024-05-06T07:08:10Z", created_by: "ENV LANG=C.UTF-8", empty_layer: true },
    { created_by: "COPY app /bin/app" },
  ],
};

const configBytes = JSON.stringify(typedConfig);

export const typedManifest: ImageManifest = {
  schemaVersion: 2,
  mediaType: MediaTypes.OciManifest,
  config: { mediaType: MediaTypes.OciConfig, digest: digestOf(configBytes), size: Buffer.byteLength(configBytes) },
  layers: [
    { mediaType: MediaTypes.OciLayerGzip, digest: layerA, size: 1234 },
    {
      mediaType: MediaTypes.OciLayerNondistributableGzip,
      digest: layerB,
      size: 5678,
      urls: ["https://example.com/layers/b.tar.gz"],
      annotations: { "org.example.note": "foreign" },
    },
  ],
  annotations: { "org.opencontainers.image.created": "2024-05-06T07:08:09Z" },
};

export const typedArtifact: ImageManifest = {
  schemaVersion: 2,
  mediaType: MediaTypes.OciManifest,
  artifactType: "application/vnd.example.sbom.v1+json",
  config: { mediaType: MediaTypes.OciEmpty, digest: digestOf("{}"), size: 2, data: "e30=" },
  layers: [{ mediaType: "application/spdx+json", digest: layerA, size: 99 }],
  subject: { mediaType: MediaTypes.OciManifest, digest: digestOf(JSON.stringify(typedManifest)), size: 700 },
};

export const typedIndex: ImageIndex = {
  schemaVersion: 2,
  mediaType: MediaTypes.OciIndex,
  manifests: [
    {
      mediaType: MediaTypes.OciManifest,
      digest: digestOf("m-amd64"),
      size: 700,
      platform: { architecture: "amd64", os: "linux" },
    },
    {
      mediaType: MediaTypes.OciManifest,
      digest: digestOf("m-arm64"),
      size: 701,
      platform: { architecture: "arm64", os: "linux", variant: "v8" },
      annotations: { "org.opencontainers.image.ref.name": "1.0" },
    },
    {
      mediaType: MediaTypes.OciManifest,
      digest: digestOf("m-win"),
      size: 702,
      platform: { architecture: "amd64", os: "windows", "os.version": "10.0.17763.1", "os.features": ["win32k"] },
    },
  ],
  annotations: { "org.example.k": "v" },
};

export const typedDockerManifest: DockerManifest = {
  schemaVersion: 2,
  mediaType: MediaTypes.DockerManifest,
  config: { mediaType: MediaTypes.DockerConfig, digest: digestOf(configBytes), size: Buffer.byteLength(configBytes) },
  layers: [{ mediaType: MediaTypes.DockerLayerGzip, digest: layerA, size: 1234 }],
};

export const typedDockerList: DockerManifestList = {
  schemaVersion: 2,
  mediaType: MediaTypes.DockerManifestList,
  manifests: [
    { mediaType: MediaTypes.DockerManifest, digest: digestOf("d-amd64"), size: 528, platform: { architecture: "amd64", os: "linux" } },
    { mediaType: MediaTypes.DockerManifest, digest: digestOf("d-arm"), size: 528, platform: { architecture: "arm", os: "linux", variant: "v7" } },
  ],
};
