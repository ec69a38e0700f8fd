import { describe, expect } from "vitest";
import type { ContentStore } from "../content.ts";
import type { Digest } from "../digest.ts";
import { digestStream } from "../digest.ts";
import { isAlreadyExists } from "../errors.ts";
import type { SuiteContext } from "./context.ts";
import { blob, readAll } from "./fixtures.ts";

async function streamedDigest(store: ContentStore, digest: Digest): Promise<{ digest: Digest; size: number }> {
  const ra = await store.readerAt({ digest });
  try {
    return await digestStream(ra.createReadStream());
  } finally {
    await ra.close();
  }
}

/** Several writers at once. */
export function concurrencyCases(ctx: SuiteContext): void {
  describe("concurrency", () => {
    ctx.test("five writers of different refs at once", async (store) => {
      const specs = [
        { size: 1000, withTotal: false, withExpected: false },
        { size: 64 * 1024, withTotal: true, withExpected: false },
        { size: 1024 * 1024, withTotal: false, withExpected: true },
        { size: ctx.options.largeBlobSize, withTotal: true, withExpected: true },
        { size: 5000, withTotal: true, withExpected: true },
      ];
      const blobs = specs.map((s) => ({ ...s, ...blob(s.size) }));
      await Promise.all(
        blobs.map(async (b, i) => {
          const w = await store.writer({
            ref: `five-${i}`,
            total: b.withTotal ? b.size : undefined,
            expected: b.withExpected ? b.digest : undefined,
          });
          // Interleave: every writer yields between chunks.
          for (let o = 0; o < b.size; o += 256 * 1024) {
            await w.write(b.data.subarray(o, Math.min(o + 256 * 1024, b.size)));
          }
          const s = await w.status();
          expect(s.offset).toBe(b.size);
          expect(s.total).toBe(b.withTotal ? b.size : 0);
          await w.commit(b.size, b.digest);
        }),
      );
      for (const b of blobs) {
        expect(await streamedDigest(store, b.digest)).toEqual({ digest: b.digest, size: b.size });
      }
      expect(await store.listStatuses({ refPrefix: "five-" })).toEqual([]);
    });

    ctx.test("the same content under two refs: exactly one commit wins", async (store) => {
      const b = blob(200_000);
      const [w1, w2] = await Promise.all([
        store.writer({ ref: "same-1", total: b.size }),
        store.writer({ ref: "same-2", total: b.size }),
      ]);
      await Promise.all([w1.write(b.data), w2.write(b.data)]);
      const results = await Promise.allSettled([w1.commit(b.size, b.digest), w2.commit(b.size, b.digest)]);
      const won = results.filter((r) => r.status === "fulfilled");
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      expect(isAlreadyExists(lost[0]?.reason), String(lost[0]?.reason)).toBe(true);
      expect(Buffer.from(await readAll(store, b.digest)).equals(b.data)).toBe(true);
      // The loser's ingest is unlocked and can be cleaned up.
      const loserRef = results[0]?.status === "rejected" ? "same-1" : "same-2";
      await store.abort(loserRef);
    });
  });
}
