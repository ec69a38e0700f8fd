import { describe, expect } from "vitest";
import type { ContentStore } from "../content.ts";
import { type Digest, digestOf } from "../digest.ts";
import type { SuiteContext } from "./context.ts";
import { blob, collect, text } from "./fixtures.ts";

async function commit(store: ContentStore, ref: string, data: Uint8Array, digest: Digest): Promise<void> {
  const w = await store.writer({ ref });
  await w.write(data);
  await w.commit(data.byteLength, digest);
}

const str = (u: Uint8Array): string => Buffer.from(u).toString("latin1");

/** Random access and streaming reads of committed blobs. */
export function readerCases(ctx: SuiteContext): void {
  describe("readerAt", () => {
    ctx.test("a 6-byte blob read through a window one byte too long", async (store) => {
      const data = text("abcdef");
      const digest = digestOf(data);
      await commit(store, "six", data, digest);
      const ra = await store.readerAt({ digest, size: 6 });
      try {
        expect(ra.size).toBe(6);
        expect(str(await ra.read(0, 7))).toBe("abcdef");
        expect(str(await ra.read(2, 3))).toBe("cde");
        expect(str(await ra.read(5, 10))).toBe("f");
        // At and past EOF: empty, not an error.
        expect((await ra.read(6, 1)).byteLength).toBe(0);
        expect((await ra.read(100, 5)).byteLength).toBe(0);
        expect(str(await collect(ra.createReadStream({ offset: 2 })))).toBe("cdef");
        expect(str(await collect(ra.createReadStream({ offset: 1, end: 4 })))).toBe("bcd");
        expect(str(await collect(ra.createReadStream({ offset: 6 })))).toBe("");
      } finally {
        await ra.close();
      }
    });

    ctx.test("reads arbitrary ranges of a larger blob", async (store) => {
      const b = blob(300_000);
      await commit(store, "ranges", b.data, b.digest);
      const ra = await store.readerAt({ digest: b.digest });
      try {
        expect(ra.size).toBe(b.size);
        // Deterministic spread of offsets, including chunk-boundary-ish and tail positions.
        const offsets = [0, 1, 4095, 4096, 65_535, 65_536, 100_001, 299_999, 299_000];
        for (const off of offsets) {
          const len = 70_000;
          const got = await ra.read(off, len);
          const want = b.data.subarray(off, Math.min(off + len, b.size));
          expect(got.byteLength, `read(${off}, ${len})`).toBe(want.byteLength);
          expect(Buffer.from(got).equals(want), `read(${off}, ${len})`).toBe(true);
        }
        const tail = await collect(ra.createReadStream({ offset: 123_457 }));
        expect(Buffer.from(tail).equals(b.data.subarray(123_457))).toBe(true);
        const mid = await collect(ra.createReadStream({ offset: 10, end: 200_010 }));
        expect(Buffer.from(mid).equals(b.data.subarray(10, 200_010))).toBe(true);
      } finally {
        await ra.close();
      }
    });

    ctx.test("two readers of one blob are independent", async (store) => {
      const b = blob(50_000);
      await commit(store, "two", b.data, b.digest);
      const [r1, r2] = await Promise.all([store.readerAt({ digest: b.digest }), store.readerAt({ digest: b.digest })]);
      const [a, c] = await Promise.all([collect(r1.createReadStream()), collect(r2.createReadStream({ offset: 25_000 }))]);
      expect(Buffer.from(a).equals(b.data)).toBe(true);
      expect(Buffer.from(c).equals(b.data.subarray(25_000))).toBe(true);
      await r1.close();
      await r2.close();
    });
  });
}
