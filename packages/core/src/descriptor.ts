import type { Digest } from "./digest.ts";

/** OCI content descriptor: what a blob is, how big, and its digest. */
export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  data?: string;
  artifactType?: string;
  platform?: Platform;
}

/** The platform an image manifest in an index runs on. */
export interface Platform {
  architecture: string;
  os: string;
  "os.version"?: string;
  "os.features"?: string[];
  variant?: string;
  features?: string[];
}

export const AnnotationRefName = "org.opencontainers.image.ref.name";
export const AnnotationCreated = "org.opencontainers.image.created";
