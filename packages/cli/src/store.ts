/** Opening the content store (an OCI image layout) of the `pull`, `push` and `content` commands. */
import { access, stat } from "node:fs/promises";
import { join, resolve as resolvePath } from "node:path";
import { FailedPreconditionError, NotFoundError } from "@ferry/core";
import { UsageError } from "./usage-error.ts";
import { openFsStore, type FsStore, type FsStoreOptions } from "@ferry/store-fs";

/**
 * store-fs options from the environment: `FERRY_PAGE_CACHE=1` writes blobs through the page
 * cache instead of with O_DIRECT (store-fs's direct writes), for a pull whose blobs are read
 * right away (an unpack) on a machine where the page cache is cheap.
 */
export function layoutOptions(env: Record<string, string | undefined> = process.env): FsStoreOptions {
  const v = env.FERRY_PAGE_CACHE;
  return v !== undefined && v !== "" && v !== "0" ? { directWriteMinBytes: Number.POSITIVE_INFINITY } : {};
}

/**
 * Open the layout at `dir`. `mustExist` refuses to create one (a source must be there; an empty
 * layout created by a typo would only hide the mistake).
 */
export async function openLayout(dir: string, mustExist: boolean): Promise<FsStore> {
  const st = await stat(dir).catch(() => undefined);
  if (st !== undefined && !st.isDirectory()) {
    throw new FailedPreconditionError(`${dir} is not a directory (an OCI image layout is one)`, { details: { dir } });
  }
  if (mustExist) {
    try {
      await access(join(dir, "oci-layout"));
    } catch {
      throw new NotFoundError(`no OCI image layout at ${dir}`, { details: { dir } });
    }
  }
  return openFsStore(dir, layoutOptions());
}

/** The store directory: `--store` resolved against the working directory, default `./.content`. */
export function storeDir(value: string | undefined, cwd: string): string {
  // An empty value (`--store "$UNSET"`) would quietly mean the working directory.
  if (value === "") throw new UsageError("--store needs a directory");
  return resolvePath(cwd, value ?? ".content");
}
