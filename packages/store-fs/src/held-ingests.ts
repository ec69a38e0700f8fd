/**
 * The refs this process holds open writers on, per store root, shared by every {@link FsStore}
 * handle on that root. An in-memory small-blob ingest has no lock file, so this registry is
 * what makes a second writer on its ref `Locked` (through any handle) and what lets `status`,
 * `listStatuses` and `abort` see it. Regular ingests are entered too: a second writer in this
 * process is refused here without touching the disk (their lock file still guards other
 * processes).
 */
import { hostname } from "node:os";
import type { Status } from "@ferry/core";
import { lockedError } from "./file-lock.ts";

/** One open writer; `writer` is unset while it is being opened. */
export interface HeldIngest {
  /** The handle that opened it: only that one reports its live status (others read the disk). */
  owner: object;
  writer?: {
    status(): Promise<Status>;
    /** True while its bytes live only in this process's memory (nothing on disk). */
    readonly inMemory?: boolean;
  };
}

const byRoot = new Map<string, Map<string, HeldIngest>>();

/** The registry of the store at `root` (a canonical path: one map per directory). */
export function heldIngestsOf(root: string): Map<string, HeldIngest> {
  let held = byRoot.get(root);
  if (held === undefined) {
    held = new Map();
    byRoot.set(root, held);
  }
  return held;
}

const HOST = hostname();

/** `Locked`, held by this process. */
export function heldHereError(ref: string): Error {
  return lockedError(`ingest ${JSON.stringify(ref)}`, { pid: process.pid, host: HOST, token: "", acquiredAt: "" });
}
