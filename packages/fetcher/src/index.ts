// Public surface of @ferry/fetcher: the OCI distribution transport.
export { createRegistryResolver, RegistryResolver, manifestMediaType, parseNextLink } from "./resolver.ts";
export type { FetchedManifest, ListOptions, ReferrersOptions, SignalOption } from "./resolver.ts";
export { RegistryFetcher } from "./fetcher.ts";
export type { RegistryFetchOptions } from "./fetcher.ts";
export { RegistryPusher } from "./pusher.ts";
export { HttpReadSeeker, parseContentRange, MAX_REOPENS_WITHOUT_PROGRESS } from "./read-seeker.ts";
export { fetchToStore } from "./fetch-to-store.ts";
export type { FetchToStoreOptions } from "./fetch-to-store.ts";
export { HttpClient, parseRetryAfter } from "./http-client.ts";
export type { HttpClientOptions, HttpRequest, HttpResponse, HttpMethod } from "./http-client.ts";
export { redactUrl } from "./registry-error.ts";
export { useBaselineWasm } from "./baseline-wasm.ts";
export type {
  AuthScope,
  HostCapability,
  MirrorHost,
  RegistryResolverOptions,
  RequestAuthorizer,
  RetryOptions,
} from "./options.ts";
export { DEFAULT_MAX_MANIFEST_BYTES } from "./options.ts";
export * from "./reference.ts";
export * from "./auth/index.ts";
