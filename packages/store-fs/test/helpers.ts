/** Shared helpers for store-fs tests. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import type { FerryError } from "@ferry/core";

export async function tempDir(prefix = "ferry-store-fs-"): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, cleanup: () => rm(path, { recursive: true, force: true }) };
}

export function bytes(n: number): Buffer {
  return randomBytes(n);
}

/** The code of the error a promise rejects with (fails the test when it resolves). */
export async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (err) {
    return (err as FerryError).code ?? `not a ferry error: ${String(err)}`;
  }
  throw new Error("expected a rejection");
}
