/** What every handler works with. */
import type { ContentStore } from "@ferry/core";
import type { RegistryStorage } from "./storage.ts";
import type { UploadManager } from "./uploads.ts";

export interface Services {
  store: ContentStore;
  storage: RegistryStorage;
  uploads: UploadManager;
  /** Accept indexes whose child manifests are not in the repository. */
  sparseIndexes: boolean;
}
