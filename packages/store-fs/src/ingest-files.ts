/**
 * The files of one ingest directory and how to read them back into a {@link Status}. The
 * `ref` file is written last when an ingest starts, so a directory without it is an ingest
 * whose creation was interrupted and is ignored by listings.
 */
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { FailedPreconditionError, isDigest, type Digest, type DigestAlgorithm, type Status } from "@ferry/core";
import { isENOENT, readOptional } from "./fs-util.ts";

export const IngestFiles = {
  ref: "ref",
  data: "data",
  total: "total",
  expected: "expected",
  startedAt: "startedat",
  updatedAt: "updatedat",
  hashState: "hashstate",
  lock: "lock",
} as const;

/** Every file an ingest directory may hold. */
export const INGEST_FILE_NAMES: readonly string[] = Object.values(IngestFiles);

export function ingestFile(dir: string, name: keyof typeof IngestFiles): string {
  return join(dir, IngestFiles[name]);
}

/** Persisted running-hash checkpoint: the digester state after exactly `offset` bytes of data. */
export interface HashCheckpoint {
  algorithm: DigestAlgorithm;
  offset: number;
  state: Uint8Array;
}

export function encodeCheckpoint(cp: HashCheckpoint): string {
  return JSON.stringify({ algorithm: cp.algorithm, offset: cp.offset, state: Buffer.from(cp.state).toString("base64") });
}

export async function readCheckpoint(dir: string): Promise<HashCheckpoint | undefined> {
  const raw = await readOptional(ingestFile(dir, "hashState"));
  if (raw === undefined) return undefined;
  try {
    const v = JSON.parse(raw) as { algorithm?: unknown; offset?: unknown; state?: unknown };
    if ((v.algorithm !== "sha256" && v.algorithm !== "sha512") || !Number.isSafeInteger(v.offset) || typeof v.state !== "string") return undefined;
    return { algorithm: v.algorithm, offset: v.offset as number, state: new Uint8Array(Buffer.from(v.state, "base64")) };
  } catch {
    return undefined; // a torn or foreign checkpoint only costs a full re-hash
  }
}

export async function readTotal(dir: string): Promise<number> {
  const raw = await readOptional(ingestFile(dir, "total"));
  if (raw === undefined || raw.trim() === "") return 0;
  const n = Number(raw.trim());
  if (!Number.isSafeInteger(n) || n < 0) throw new FailedPreconditionError(`corrupt ingest: ${ingestFile(dir, "total")} holds ${JSON.stringify(raw.slice(0, 40))}`);
  return n;
}

export async function readExpected(dir: string): Promise<Digest | undefined> {
  const raw = await readOptional(ingestFile(dir, "expected"));
  if (raw === undefined || raw.trim() === "") return undefined;
  const d = raw.trim();
  if (!isDigest(d)) throw new FailedPreconditionError(`corrupt ingest: ${ingestFile(dir, "expected")} is not a digest`);
  return d;
}

export async function readTime(path: string): Promise<Date | undefined> {
  const raw = await readOptional(path);
  if (raw === undefined) return undefined;
  const t = Date.parse(raw.trim());
  return Number.isNaN(t) ? undefined : new Date(t);
}

/**
 * Status of an ingest as it is on disk (bytes flushed so far), or undefined when the directory
 * holds no complete ingest. `updatedAt` is the later of the `updatedat` file and the data's
 * mtime, so a writer killed before closing still reports when it last wrote.
 */
export async function readIngestStatus(dir: string): Promise<Status | undefined> {
  const ref = await readOptional(ingestFile(dir, "ref"));
  if (ref === undefined) return undefined;
  let size = 0;
  let mtime = 0;
  try {
    const st = await stat(ingestFile(dir, "data"));
    size = st.size;
    mtime = Math.floor(st.mtimeMs);
  } catch (err) {
    if (!isENOENT(err)) throw err;
  }
  const startedAt = (await readTime(ingestFile(dir, "startedAt"))) ?? new Date(mtime);
  const recorded = (await readTime(ingestFile(dir, "updatedAt")))?.getTime() ?? 0;
  const status: Status = {
    ref,
    offset: size,
    total: await readTotal(dir),
    startedAt,
    updatedAt: new Date(Math.max(recorded, mtime, startedAt.getTime())),
  };
  const expected = await readExpected(dir);
  if (expected !== undefined) status.expected = expected;
  return status;
}
