/**
 * Writing a batch at a file position: whole (short writes retried), and with O_DIRECT when the
 * writer has a direct handle, falling back to the page cache when the kernel refuses (EINVAL).
 * Shared by FsWriter's direct mode and the hash worker's batches (OffloadedIngest).
 */
import type { FileHandle } from "node:fs/promises";
import { FailedPreconditionError } from "@ferry/core";
import { errno } from "./fs-util.ts";

/** pwrite buf[from, to) at `pos`, looping over short writes. */
export async function writeAll(fh: FileHandle, buf: Buffer, from: number, to: number, pos: number): Promise<void> {
  while (from < to) {
    const { bytesWritten } = await fh.write(buf, from, to - from, pos);
    if (bytesWritten <= 0) throw new FailedPreconditionError(`write of ${to - from} bytes at ${pos} wrote nothing`);
    from += bytesWritten;
    pos += bytesWritten;
  }
}

/**
 * Write buf[0, len) at `pos` through `direct` when given, else (or when the kernel refuses the
 * direct write) through `buffered`. Resolves to `"refused"` when the direct handle was refused:
 * the caller stops using it (the bytes are written all the same).
 */
export async function writePreferDirect(
  direct: FileHandle | undefined,
  buffered: FileHandle,
  buf: Buffer,
  len: number,
  pos: number,
): Promise<"written" | "refused"> {
  if (direct !== undefined) {
    try {
      await writeAll(direct, buf, 0, len, pos);
      return "written";
    } catch (err) {
      if (errno(err) !== "EINVAL") throw err;
    }
  }
  await writeAll(buffered, buf, 0, len, pos);
  return direct !== undefined ? "refused" : "written";
}
