/** Shared helpers for store-fs tests. */
import { spawnSync } from "node:child_process";
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

/** Whether an external tool is available; missing tools skip, except under CI=true. */
export function requireTool(name: string): boolean {
  const found = spawnSync("sh", ["-c", `command -v ${name}`]).status === 0;
  if (!found && (process.env.CI === "true" || process.env.CI === "1")) {
    throw new Error(`${name} is required under CI=true but is not installed`);
  }
  return found;
}
