// Public surface of the auth module of @ferry/fetcher. `AuthScope` is exported by the package
// index from options.ts (the same shape), so it is not repeated here.
export { createAuthorizer, DEFAULT_TOKEN_LIFETIME_S, mergeScopes, scopeStrings } from "./authorizer.ts";
export type { Authorizer, AuthorizerOptions } from "./authorizer.ts";
export { findChallenge, parseChallenges } from "./challenge.ts";
export type { Challenge, ParseChallengesOptions } from "./challenge.ts";
export {
  chainCredentials,
  createCredentialStore,
  credentialHostKey,
  dockerConfigCredentials,
  dockerConfigPath,
  dockerServerUrl,
  runCredentialHelper,
  staticCredentials,
} from "./credentials.ts";
export type {
  Credential,
  CredentialHelperOptions,
  CredentialMap,
  CredentialStore,
  DockerConfigOptions,
  IdentityTokenCredential,
  PasswordCredential,
  RegistryTokenCredential,
} from "./credentials.ts";
export { redact } from "./redact.ts";
