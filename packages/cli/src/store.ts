/** Opening the content store (an OCI image layout) of the `pull`, `push` and `content` commands. */
import { access } from "node:fs/promises";
import { join, resolve as resolvePath } from "node:path";
import { NotFoundError } from "@ferry/core";
import { openFsStore, type FsStore } from "@ferry/store-fs";

/**
 * Open the layout at `dir`. `mustExist` refuses to create one (a source must be there; an empty
 * layout created by a typo would only hide the mistake).
 */
export async function openLayout(dir: string, mustExist: boolean): Promise<FsStore> {
  if (mustExist) {
    try {
      await access(join(dir, "oci-layout"));
    } catch {
      throw new NotFoundError(`no OCI image layout at ${dir}`, { details: { dir } });
    }
  }
  return openFsStore(dir);
}

/** The store directory: `--store` resolved against the working directory, default `./.content`. */
export function storeDir(value: string | undefined, cwd: string): string {
  return resolvePath(cwd, value ?? ".content");
}
