/** Small filesystem helpers: errno checks, atomic small-file writes, directory fsync. */
import { randomBytes } from "node:crypto";
import { open, readFile, rename, rm, rmdir } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { abortError } from "@ferry/core";
import { closeFd, fsyncFd, openFd, unlinkPath } from "./fd-calls.ts";

export function errno(err: unknown): string | undefined {
  return typeof err === "object" && err !== null && "code" in err ? String((err as { code: unknown }).code) : undefined;
}

export const isENOENT = (err: unknown): boolean => errno(err) === "ENOENT";
export const isEEXIST = (err: unknown): boolean => errno(err) === "EEXIST";

/**
 * A name part no other process or call picks: random once per process (or worker), then a
 * counter. A CSPRNG call per name cost ~9 µs, a temp file per small commit. Files named with it
 * are created exclusively all the same.
 */
export function randomToken(): string {
  tokenPrefix ??= randomBytes(8).toString("hex");
  return `${tokenPrefix}${(tokenCount++).toString(36)}`;
}
let tokenPrefix: string | undefined;
let tokenCount = 0;

/** Name of a temporary sibling of `path`; the dot prefix keeps walks from mistaking it for data. */
export function tempSibling(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomToken()}.tmp`);
}

/**
 * Replace `path` with `data` atomically: write a temporary sibling, optionally fsync it, rename
 * it over the target. Readers see the old or the new content, never a torn one.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, options: { fsync?: boolean; mode?: number } = {}): Promise<void> {
  const tmp = tempSibling(path);
  const fh = await open(tmp, "wx", options.mode ?? 0o644);
  try {
    await fh.writeFile(data);
    if (options.fsync) await fh.sync();
  } catch (err) {
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  if (options.fsync) await fsyncDir(dirname(path));
}

/**
 * Remove a file if it exists. One `unlink` (fs.rm with `force` costs two `lstat`s before it,
 * and this runs several times per blob).
 */
export async function unlinkIfExists(path: string): Promise<void> {
  try {
    await unlinkPath(path);
  } catch (err) {
    if (!isENOENT(err)) throw err;
  }
}

/**
 * Remove a directory whose entries are expected to be among `names`: unlink those (at once),
 * then rmdir; anything else inside (a stray temp file) falls back to a recursive rm. About
 * half the syscalls of fs.rm's recursive walk, which stats every entry first.
 */
export async function removeDirOf(dir: string, names: readonly string[]): Promise<void> {
  await Promise.all(names.map((n) => unlinkIfExists(join(dir, n))));
  try {
    await rmdir(dir);
  } catch (err) {
    if (isENOENT(err)) return;
    await rm(dir, { recursive: true, force: true });
  }
}

/** fsync a directory so a rename or link inside it survives a crash. */
export async function fsyncDir(dir: string): Promise<void> {
  const fd = await openFd(dir, "r");
  try {
    await fsyncFd(fd);
  } catch (err) {
    // Some filesystems refuse fsync on directories; the rename is still atomic there.
    if (errno(err) !== "EINVAL" && errno(err) !== "EISDIR") throw err;
  } finally {
    await closeFd(fd);
  }
}

/** Per directory: the fsync running now, and the one queued to start after it. */
const runningSyncs = new Map<string, Promise<void>>();
const queuedSyncs = new Map<string, Promise<void>>();

/**
 * fsync a directory on behalf of a change made before this call, sharing the work with
 * concurrent callers: any fsync that starts after the change covers it, so callers arriving
 * while one runs all wait for the single one queued behind it instead of each issuing their
 * own. With many small blobs committed at once this turns N directory fsyncs into a few.
 */
export function fsyncDirShared(dir: string): Promise<void> {
  const queued = queuedSyncs.get(dir);
  if (queued !== undefined) return queued; // not started yet, so it starts after our change
  const start = (): Promise<void> => {
    queuedSyncs.delete(dir); // from now on, later changes need a later fsync
    const p = fsyncDir(dir);
    runningSyncs.set(dir, p);
    const clear = (): void => {
      if (runningSyncs.get(dir) === p) runningSyncs.delete(dir);
    };
    p.then(clear, clear);
    return p;
  };
  const running = runningSyncs.get(dir);
  if (running === undefined) return start();
  const next = running.then(start, start);
  queuedSyncs.set(dir, next);
  return next;
}

/** Read a small text file, or undefined when it does not exist. */
export async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    if (isENOENT(err)) return undefined;
    throw err;
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortError(signal));
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      if (signal) reject(abortError(signal));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
