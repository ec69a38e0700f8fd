/** Media types of the OCI image spec and of Docker's image manifest v2 schema 2. */
export const MediaTypes = {
  OciManifest: "application/vnd.oci.image.manifest.v1+json",
  OciIndex: "application/vnd.oci.image.index.v1+json",
  OciConfig: "application/vnd.oci.image.config.v1+json",
  OciLayout: "application/vnd.oci.layout.header.v1+json",
  OciEmpty: "application/vnd.oci.empty.v1+json",
  OciLayer: "application/vnd.oci.image.layer.v1.tar",
  OciLayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  OciLayerZstd: "application/vnd.oci.image.layer.v1.tar+zstd",
  OciLayerNondistributable: "application/vnd.oci.image.layer.nondistributable.v1.tar",
  OciLayerNondistributableGzip: "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
  OciLayerNondistributableZstd: "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
  DockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  DockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  DockerConfig: "application/vnd.docker.container.image.v1+json",
  DockerLayerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  DockerLayerForeignGzip: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
  DockerPluginConfig: "application/vnd.docker.plugin.v1+json",
} as const;

export type KnownMediaType = (typeof MediaTypes)[keyof typeof MediaTypes];

/** Every manifest media type a resolver should ask for, most preferred first. */
export const ManifestAcceptTypes: readonly string[] = [
  MediaTypes.OciIndex,
  MediaTypes.OciManifest,
  MediaTypes.DockerManifestList,
  MediaTypes.DockerManifest,
];

export function isIndexMediaType(mt: string | undefined): boolean {
  return mt === MediaTypes.OciIndex || mt === MediaTypes.DockerManifestList;
}

export function isManifestMediaType(mt: string | undefined): boolean {
  return mt === MediaTypes.OciManifest || mt === MediaTypes.DockerManifest;
}

/** Index or image manifest: a document whose children are other descriptors. */
export function isManifestLike(mt: string | undefined): boolean {
  return isIndexMediaType(mt) || isManifestMediaType(mt);
}

export function isConfigMediaType(mt: string | undefined): boolean {
  return mt === MediaTypes.OciConfig || mt === MediaTypes.DockerConfig;
}

/** Layers that must not be pushed to another registry (their `urls` say where they live). */
export function isNonDistributable(mt: string | undefined): boolean {
  return (
    mt === MediaTypes.OciLayerNondistributable ||
    mt === MediaTypes.OciLayerNondistributableGzip ||
    mt === MediaTypes.OciLayerNondistributableZstd ||
    mt === MediaTypes.DockerLayerForeignGzip
  );
}

export function isLayerMediaType(mt: string | undefined): boolean {
  if (mt === undefined) return false;
  return (
    mt.startsWith("application/vnd.oci.image.layer.") ||
    mt === MediaTypes.DockerLayerGzip ||
    mt === MediaTypes.DockerLayerForeignGzip
  );
}
