// Public surface of @ferry/registry: an embeddable OCI distribution registry on any content store.
export { createRegistry, type Registry, type RegistryOptions, type ListeningRegistry } from "./registry.ts";
export type { RegistryStorage, ManifestLink, UploadSession } from "./storage.ts";
export { MemoryRegistryStorage } from "./storage-memory.ts";
export { FsRegistryStorage } from "./storage-fs.ts";
export type { AuthOptions, TokenOptions, AuthStats, Access } from "./auth.ts";
export type { FaultRule } from "./faults.ts";
export { OciHttpError, OciErrorStatus, type OciErrorCode } from "./oci-errors.ts";
export { isValidName, isValidTag } from "./names.ts";
export { UploadRefPrefix } from "./uploads.ts";
