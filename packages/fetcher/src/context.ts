import type { HttpClient } from "./http-client.ts";

/** Settings shared by the resolver, fetchers and pushers of one {@link createRegistryResolver} call. */
export interface TransportContext {
  http: HttpClient;
  maxManifestBytes: number;
  parallelRangeThreshold: number;
  rangeChunkSize: number;
  parallelRanges: number;
  socketReadMinBytes: number;
  uploadChunkSize: number | undefined;
  minUploadChunkSize: number;
}
