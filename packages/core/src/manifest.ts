/**
 * The OCI content model: image manifests, image indexes and image configs, plus Docker's image
 * manifest v2 schema 2 and manifest list, which share the OCI shapes under Docker media types.
 * Parse and validate untrusted bytes with `parseManifest` / `parseImageConfig`
 * (validate-manifest.ts); these are only the shapes.
 */
import type { Descriptor } from "./descriptor.ts";
import type { Digest } from "./digest.ts";
import type { MediaTypes } from "./media-types.ts";

/** Largest manifest or index ferry reads (4 MiB, the limit containerd and oras use too). */
export const MaxManifestBytes = 4 * 1024 * 1024;

/** Default cap for an image config: configs with long histories outgrow manifests (8 MiB). */
export const MaxConfigBytes = 8 * 1024 * 1024;

/** An image manifest: one config and an ordered list of layers (base layer first). */
export interface ImageManifest {
  schemaVersion: 2;
  /** OCI: optional but recommended; Docker schema 2: required. */
  mediaType?: string;
  /** The type of an artifact when the manifest is used for one (OCI 1.1). */
  artifactType?: string;
  config: Descriptor;
  /** Base layer first. May be empty for artifacts; OCI recommends at least one entry. */
  layers: Descriptor[];
  /** The manifest this one refers to (referrers API, OCI 1.1). */
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

/** An image index (Docker: manifest list): manifests for several platforms or artifacts. */
export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  /** Children; image manifests here usually carry a `platform`. */
  manifests: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

/** A Docker image manifest v2 schema 2: the OCI manifest shape with a mandatory Docker media type. */
export interface DockerManifest extends ImageManifest {
  mediaType: typeof MediaTypes.DockerManifest;
}

/** A Docker manifest list: the OCI index shape with a mandatory Docker media type. */
export interface DockerManifestList extends ImageIndex {
  mediaType: typeof MediaTypes.DockerManifestList;
}

/** Execution defaults of an image (`config` inside an {@link ImageConfig}). */
export interface ContainerConfig {
  User?: string;
  /** Keys are `port/proto` (e.g. `"8080/tcp"`), values are empty objects. */
  ExposedPorts?: Record<string, Record<string, never>>;
  /** `NAME=value` entries. Docker writes `null` for none. */
  Env?: string[] | null;
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  /** Keys are paths, values empty objects. */
  Volumes?: Record<string, Record<string, never>> | null;
  WorkingDir?: string;
  Labels?: Record<string, string> | null;
  StopSignal?: string;
  /** Windows-only: `Cmd`/`Entrypoint` are already escaped. */
  ArgsEscaped?: boolean;
}

/** The layer chain of an image: `diff_ids` are digests of the uncompressed layer tars, in order. */
export interface RootFS {
  type: "layers";
  diff_ids: Digest[];
}

/** One step of the build history. Entries with `empty_layer` do not add a layer. */
export interface HistoryEntry {
  /** RFC 3339 date-time. */
  created?: string;
  author?: string;
  created_by?: string;
  comment?: string;
  empty_layer?: boolean;
}

/**
 * An OCI image config (`application/vnd.oci.image.config.v1+json`), which is also the shape of
 * Docker's `application/vnd.docker.container.image.v1+json` (Docker adds fields such as
 * `container_config` and `docker_version`; they are kept as-is when parsed).
 */
export interface ImageConfig {
  /** RFC 3339 date-time the image was created. */
  created?: string;
  author?: string;
  architecture: string;
  os: string;
  "os.version"?: string;
  "os.features"?: string[];
  variant?: string;
  config?: ContainerConfig;
  rootfs: RootFS;
  history?: HistoryEntry[];
}

/** What `parseManifest` found: a tagged union so callers switch on `kind`. */
export type ParsedManifest =
  | {
      kind: "index";
      index: ImageIndex;
      /** The document's media type: its own `mediaType`, else the one given, else the OCI one. */
      mediaType: string;
    }
  | {
      kind: "manifest";
      manifest: ImageManifest;
      mediaType: string;
    };
