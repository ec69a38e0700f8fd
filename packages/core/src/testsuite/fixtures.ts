import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { expect } from "vitest";
import type { ContentStore, ReaderAt, Status, Writer } from "../content.ts";
import { type Digest, digestOf } from "../digest.ts";
import { type ErrorCode, FerryError } from "../errors.ts";

/** Random bytes and their digest. */
export function blob(size: number): { data: Uint8Array; digest: Digest; size: number } {
  const data = new Uint8Array(randomBytes(size));
  return { data, digest: digestOf(data), size };
}

export const text = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Assert that `p` rejects with a ferry error of `code`; returns the error. */
export async function expectCode(p: Promise<unknown>, code: ErrorCode): Promise<FerryError> {
  let result: unknown;
  try {
    result = await p;
  } catch (err) {
    if (!(err instanceof FerryError)) {
      throw new Error(`expected a FerryError with code ${code}, got ${String(err)}`, { cause: err });
    }
    expect(err.code, err.message).toBe(code);
    return err;
  }
  throw new Error(`expected rejection with code ${code}, but it resolved to ${describe(result)}`);
}

function describe(v: unknown): string {
  if (v === undefined) return "undefined";
  if (typeof v === "object" && v !== null) return v.constructor?.name ?? "object";
  return String(v);
}

/** Write `data` in chunks of `chunk` bytes. */
export async function writeChunks(w: Writer, data: Uint8Array, chunk = 64 * 1024): Promise<void> {
  for (let o = 0; o < data.byteLength; o += chunk) await w.write(data.subarray(o, Math.min(o + chunk, data.byteLength)));
}

/** Read a committed blob through `createReadStream` (small blobs only). */
export async function readAll(store: ContentStore, digest: Digest): Promise<Uint8Array> {
  const ra = await store.readerAt({ digest });
  try {
    return await collect(ra.createReadStream());
  } finally {
    await ra.close();
  }
}

export async function collect(stream: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of stream) parts.push(c);
  return new Uint8Array(Buffer.concat(parts));
}

/** Assert `got` lies in [before, after] widened to the store's timestamp granularity. */
export function expectWithin(got: Date, before: number, after: number, granularityMs: number, what: string): void {
  expect(got, what).toBeInstanceOf(Date);
  const t = got.getTime();
  expect(t, `${what} too early`).toBeGreaterThanOrEqual(Math.floor(before / granularityMs) * granularityMs);
  expect(t, `${what} too late`).toBeLessThanOrEqual(after + granularityMs);
}

export function expectSameStatus(a: Status, b: Status): void {
  expect(b.ref).toBe(a.ref);
  expect(b.offset).toBe(a.offset);
  expect(b.total).toBe(a.total);
  expect(b.expected).toBe(a.expected);
  expect(b.startedAt.getTime(), "startedAt changed across reopen").toBe(a.startedAt.getTime());
  expect(b.updatedAt.getTime(), "updatedAt changed across reopen").toBe(a.updatedAt.getTime());
}

/** A ReaderAt over bytes in memory, as a source for copy/resume cases. */
export function memoryReaderAt(data: Uint8Array): ReaderAt {
  return {
    size: data.byteLength,
    async read(offset, length) {
      return data.slice(Math.min(offset, data.byteLength), Math.min(offset + length, data.byteLength));
    },
    createReadStream(options = {}) {
      const start = Math.min(options.offset ?? 0, data.byteLength);
      const end = Math.min(options.end ?? data.byteLength, data.byteLength);
      return Readable.from(chunked(data.subarray(start, end), 1000));
    },
    async close() {},
  };
}

/** Split into chunks (a plain one-shot stream source yields several, unevenly sized). */
export function* chunked(data: Uint8Array, size: number): Generator<Uint8Array> {
  for (let o = 0; o < data.byteLength; o += size) yield data.subarray(o, Math.min(o + size, data.byteLength));
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
