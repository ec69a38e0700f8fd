import { Readable } from "node:stream";
import { describe, expect } from "vitest";
import type { Writer } from "../content.ts";
import { copyBlob } from "../content-helpers/copy-blob.ts";
import { digestOf } from "../digest.ts";
import type { SuiteContext } from "./context.ts";
import { blob, chunked, expectCode, memoryReaderAt, readAll } from "./fixtures.ts";

type Resume = (w: Writer, data: Uint8Array, size: number, digest: ReturnType<typeof digestOf>) => Promise<void>;

// Odd chunk size so resume offsets fall inside chunks.
const CHUNK = 999;

const resumers: Record<string, Resume> = {
  async truncate(w, data, size, digest) {
    await w.truncate(0);
    for (const c of chunked(data, CHUNK)) await w.write(c);
    await w.commit(size, digest);
  },
  async "discard from a plain reader"(w, data, size, digest) {
    await copyBlob(w, Readable.from(chunked(data, CHUNK)), { size, expected: digest });
  },
  async "copy from a seeker"(w, data, size, digest) {
    await copyBlob(w, (offset) => Readable.from(chunked(data.subarray(offset), CHUNK)), { size, expected: digest });
  },
  async "copy from a reader-at"(w, data, size, digest) {
    await copyBlob(w, memoryReaderAt(data), { size, expected: digest });
  },
  async "restart when the source cannot seek"(w, data, size, digest) {
    await copyBlob(
      w,
      (offset) => Object.assign(Readable.from(chunked(data, CHUNK)), { rangeIgnored: offset > 0 }),
      { size, expected: digest },
    );
  },
};

const sizes = [500, 5000, 50_000];
const fractions = [0, 0.1, 0.5, 0.9, 1];

/** Interrupted ingests resumed every way a caller can. */
export function resumeCases(ctx: SuiteContext): void {
  describe("resume", () => {
    for (const [method, resume] of Object.entries(resumers)) {
      describe(method, () => {
        for (const size of sizes) {
          for (const fraction of fractions) {
            ctx.test(`size ${size}, ${fraction * 100}% written`, async (store) => {
              const b = blob(size);
              const ref = `resume-${size}-${fraction}`;
              const limit = Math.floor(size * fraction);
              const w = await store.writer({ ref, total: size, expected: b.digest });
              for (const c of chunked(b.data.subarray(0, limit), CHUNK)) await w.write(c);
              const before = await w.status();
              expect(before.offset).toBe(limit);
              expect(w.digest()).toBe(digestOf(b.data.subarray(0, limit)));
              await w.close();

              const w2 = await store.writer({ ref, total: size, expected: b.digest });
              const after = await w2.status();
              expect(after.offset).toBe(limit);
              expect(after.startedAt.getTime()).toBe(before.startedAt.getTime());
              expect(w2.digest()).toBe(digestOf(b.data.subarray(0, limit)));
              await resume(w2, b.data, size, b.digest);

              const info = await store.info(b.digest);
              expect(info.size).toBe(size);
              expect(Buffer.from(await readAll(store, b.digest)).equals(b.data)).toBe(true);
              await expectCode(store.status(ref), "NotFound");
            });
          }
        }
      });
    }
  });
}
