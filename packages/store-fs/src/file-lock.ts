/**
 * A cross-process lock held as a file. Acquiring is one atomic `link(2)` of a fully written
 * owner record onto the lock path, so the lock file is never seen half written. A holder is
 * considered gone when
 *  - it ran on this host and its pid no longer exists (or was reused by a newer process, or is
 *    a zombie): detected at once, so a SIGKILLed writer does not block anyone; or
 *  - it ran on another host (shared filesystem) and stopped refreshing the lock's mtime for
 *    `staleMs`.
 * Taking over a dead holder's lock is serialised by a short-lived guard directory, and the
 * owner is re-read inside the guard, so two processes racing for a stale lock cannot both win.
 */
import { readFileSync, readlinkSync } from "node:fs";
import { link, mkdir, open, readFile, rename, rmdir, stat, unlink, utimes } from "node:fs/promises";
import { hostname } from "node:os";
import { LockedError, throwIfAborted } from "@ferry/core";
import { isEEXIST, isENOENT, randomToken, sleep } from "./fs-util.ts";

export interface LockOwner {
  pid: number;
  host: string;
  /** Start time of the holder process (Linux clock ticks since boot), to detect pid reuse. */
  start?: string;
  /**
   * The holder's boot and pid namespace (Linux). A pid means something only in its own
   * namespace: containers sharing a store and a hostname (host networking) must not judge each
   * other's pids, and fall back to the heartbeat.
   */
  pidSpace?: string;
  token: string;
  acquiredAt: string;
}

export interface FileLockOptions {
  /** A holder on another host is stale after this long without a heartbeat. Default 30 000 ms. */
  staleMs?: number;
}

export interface AcquireOptions extends FileLockOptions {
  /** Keep retrying (jittered backoff) this long while a live holder has the lock. Default 0. */
  waitMs?: number;
  signal?: AbortSignal;
}

const DEFAULT_STALE_MS = 30_000;

/**
 * How long a write of index.json or of a blob's metadata waits for its lock. Each holder keeps
 * it for milliseconds, but many processes at once (30 fsync'd name updates each) queued past a
 * 10 s wait, failing a pull at its very end with `Locked`.
 */
export const METADATA_LOCK_WAIT_MS = 60_000;
/** A takeover guard left by a crash between mkdir and rmdir is ignored after this long. */
const GUARD_STALE_MS = 10_000;

const HOST = hostname();
const SELF_START = processStart(process.pid);
const SELF_PID_SPACE = pidSpace();

function pidSpace(): string | undefined {
  try {
    const boot = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
    return `${boot} ${readlinkSync("/proc/self/ns/pid")}`;
  } catch {
    return undefined; // not Linux, or no /proc: pids are judged as before
  }
}

export class FileLock {
  readonly path: string;
  readonly owner: LockOwner;
  #heartbeat: NodeJS.Timeout | undefined;
  #released = false;
  #lost = false;

  private constructor(path: string, owner: LockOwner, staleMs: number) {
    this.path = path;
    this.owner = owner;
    // Refresh mtime so holders on other hosts can tell we are alive; unref so it never keeps
    // the process running.
    this.#heartbeat = setInterval(() => void this.#touch(), Math.max(1000, Math.floor(staleMs / 3)));
    this.#heartbeat.unref();
  }

  /**
   * Take the lock at `path` if it is free or its holder is gone; returns the current live
   * holder (and no lock) otherwise. The lock's directory must exist (ENOENT otherwise).
   */
  static async tryAcquire(path: string, options: FileLockOptions = {}): Promise<{ lock?: FileLock; holder?: LockOwner }> {
    const staleMs = options.staleMs ?? DEFAULT_STALE_MS;
    const owner: LockOwner = { pid: process.pid, host: HOST, token: randomToken(), acquiredAt: new Date().toISOString() };
    if (SELF_START !== undefined) owner.start = SELF_START;
    if (SELF_PID_SPACE !== undefined) owner.pidSpace = SELF_PID_SPACE;
    const tmp = `${path}.${owner.token}.tmp`;
    const fh = await open(tmp, "wx", 0o644);
    try {
      await fh.writeFile(JSON.stringify(owner));
    } finally {
      await fh.close();
    }
    try {
      for (let attempt = 0; ; attempt++) {
        if (attempt > 20) return { holder: unknownOwner() }; // the lock keeps changing hands
        try {
          await link(tmp, path);
          return { lock: new FileLock(path, owner, staleMs) };
        } catch (err) {
          if (!isEEXIST(err)) throw err;
        }
        const current = await readHolder(path);
        if (current === undefined) continue; // released in between: try again
        if (await isAlive(current.owner, current.mtimeMs, staleMs)) return { holder: current.owner ?? unknownOwner() };
        if (attempt >= 5) return { holder: current.owner ?? unknownOwner() };
        await removeDeadHolder(path, current, staleMs);
      }
    } finally {
      await unlink(tmp).catch(() => {});
    }
  }

  /** Like {@link tryAcquire}, retrying for `waitMs`; throws `Locked` naming the holder. */
  static async acquire(path: string, what: string, options: AcquireOptions = {}): Promise<FileLock> {
    const deadline = Date.now() + (options.waitMs ?? 0);
    let delay = 4;
    for (;;) {
      throwIfAborted(options.signal);
      const { lock, holder } = await FileLock.tryAcquire(path, options);
      if (lock) return lock;
      if (Date.now() >= deadline) throw lockedError(what, holder);
      await sleep(Math.min(delay * (0.5 + Math.random()), Math.max(1, deadline - Date.now())), options.signal);
      delay = Math.min(delay * 2, 250);
    }
  }

  /** False once the lock file was found taken over by someone else. */
  async stillHeld(): Promise<boolean> {
    if (this.#released || this.#lost) return false;
    // Only the token matters here, not the mtime: one read, no stat.
    const owner = await readOwner(this.path);
    if (owner?.token !== this.owner.token) this.#lost = true;
    return !this.#lost;
  }

  /** Remove the lock file if it is still ours. Idempotent. */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    clearInterval(this.#heartbeat);
    const owner = await readOwner(this.path).catch(() => undefined);
    if (owner?.token === this.owner.token) await unlink(this.path).catch(() => {});
  }

  /** Forget the lock without touching the file (its directory was removed with it). */
  forget(): void {
    this.#released = true;
    clearInterval(this.#heartbeat);
  }

  async #touch(): Promise<void> {
    if (this.#released) return;
    const now = new Date();
    await utimes(this.path, now, now).catch(() => {});
  }
}

/** Whether the lock file at `path` has a live holder (a dead holder's file may linger). */
export async function heldByLive(path: string, staleMs = DEFAULT_STALE_MS): Promise<boolean> {
  const h = await readHolder(path);
  return h !== undefined && (await isAlive(h.owner, h.mtimeMs, staleMs));
}

export function lockedError(what: string, holder: LockOwner | undefined): LockedError {
  const by = holder && holder.pid > 0 ? ` by pid ${holder.pid} on ${holder.host}` : "";
  return new LockedError(`${what} is locked${by}`, { details: holder ? { pid: holder.pid, host: holder.host } : {} });
}

function unknownOwner(): LockOwner {
  return { pid: 0, host: "", token: "", acquiredAt: "" };
}

interface Holder {
  owner: LockOwner | undefined;
  raw: string;
  mtimeMs: number;
}

async function readHolder(path: string): Promise<Holder | undefined> {
  let raw: string;
  let mtimeMs: number;
  try {
    raw = await readFile(path, "utf8");
    mtimeMs = (await stat(path)).mtimeMs;
  } catch (err) {
    if (isENOENT(err)) return undefined;
    throw err;
  }
  return { owner: parseOwner(raw), raw, mtimeMs };
}

async function readOwner(path: string): Promise<LockOwner | undefined> {
  try {
    return parseOwner(await readFile(path, "utf8"));
  } catch (err) {
    if (isENOENT(err)) return undefined;
    throw err;
  }
}

function parseOwner(raw: string): LockOwner | undefined {
  try {
    const v: unknown = JSON.parse(raw);
    if (typeof v !== "object" || v === null) return undefined;
    const o = v as Record<string, unknown>;
    if (typeof o.pid !== "number" || typeof o.host !== "string" || typeof o.token !== "string") return undefined;
    return {
      pid: o.pid,
      host: o.host,
      token: o.token,
      acquiredAt: typeof o.acquiredAt === "string" ? o.acquiredAt : "",
      ...(typeof o.start === "string" ? { start: o.start } : {}),
      ...(typeof o.pidSpace === "string" ? { pidSpace: o.pidSpace } : {}),
    };
  } catch {
    return undefined;
  }
}

async function isAlive(owner: LockOwner | undefined, mtimeMs: number, staleMs: number): Promise<boolean> {
  // A pid is judged only within its own pid namespace (same host, same boot); a record that
  // does not say (an older ferry) is judged as before.
  const samePidSpace = owner?.pidSpace === undefined || SELF_PID_SPACE === undefined || owner.pidSpace === SELF_PID_SPACE;
  if (owner !== undefined && owner.host === HOST && samePidSpace) return pidAlive(owner);
  // Unknown host or unreadable record: only the heartbeat can tell.
  return Date.now() - mtimeMs < staleMs;
}

function pidAlive(owner: LockOwner): boolean {
  if (owner.pid === process.pid) return owner.start === undefined || owner.start === SELF_START;
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
  const stat = readProcStat(owner.pid);
  if (stat === undefined) return true; // no /proc: trust kill(0)
  if (stat.state === "Z" || stat.state === "X") return false;
  if (owner.start !== undefined && stat.start !== owner.start) return false; // pid reused
  return true;
}

function processStart(pid: number): string | undefined {
  return readProcStat(pid)?.start;
}

function readProcStat(pid: number): { state: string; start: string } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name may contain spaces and parentheses; fields resume after the last ")".
    const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
    const state = rest[0];
    const start = rest[19]; // field 22 overall
    if (state === undefined || start === undefined) return undefined;
    return { state, start };
  } catch {
    return undefined;
  }
}

/** Remove a dead holder's lock file, at most one process at a time and only if unchanged. */
async function removeDeadHolder(path: string, seen: Holder, staleMs: number): Promise<void> {
  const guard = `${path}.takeover`;
  try {
    await mkdir(guard);
  } catch (err) {
    if (!isEEXIST(err)) throw err;
    // Someone else is taking over. A guard abandoned by a crash is removed after a while.
    const st = await stat(guard).catch(() => undefined);
    if (st && Date.now() - st.mtimeMs > GUARD_STALE_MS) await rmdir(guard).catch(() => {});
    else await sleep(5 + Math.random() * 20);
    return;
  }
  try {
    const again = await readHolder(path);
    if (again !== undefined && again.raw === seen.raw && !(await isAlive(again.owner, again.mtimeMs, staleMs))) {
      // Moved aside and looked at, not unlinked by path: had this process stalled past the
      // guard's age (SIGSTOP, a VM pause), a newer holder's live lock would be at the path now,
      // and must be put back.
      const aside = `${path}.${randomToken()}.dead`;
      try {
        await rename(path, aside);
      } catch (err) {
        if (isENOENT(err)) return;
        throw err;
      }
      if ((await readFile(aside, "utf8").catch(() => undefined)) !== seen.raw) await link(aside, path).catch(() => {});
      await unlink(aside).catch(() => {});
    }
  } finally {
    await rmdir(guard).catch(() => {});
  }
}
