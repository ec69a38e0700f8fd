/** Whether a filesystem accepts O_DIRECT, for tests of store-fs's direct writes. */
import { closeSync, constants, openSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** True when a file in `dir` can be opened with O_DIRECT (not on tmpfs before Linux 6.6, nor on macOS). */
export function directIoSupported(dir: string): boolean {
  if (typeof constants.O_DIRECT !== "number") return false;
  const probe = join(dir, `.direct-probe-${process.pid}`);
  writeFileSync(probe, "");
  try {
    closeSync(openSync(probe, constants.O_WRONLY | constants.O_DIRECT));
    return true;
  } catch {
    return false;
  } finally {
    unlinkSync(probe);
  }
}
