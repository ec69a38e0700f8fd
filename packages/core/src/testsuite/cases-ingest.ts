import { describe, expect } from "vitest";
import { digestOf } from "../digest.ts";
import type { SuiteContext } from "./context.ts";
import { blob, expectCode, expectSameStatus, readAll, sleep, text } from "./fixtures.ts";

/** Ingest lifecycle: resume, truncate, locks, abort, listing, reopen checks. */
export function ingestCases(ctx: SuiteContext): void {
  const g = ctx.options.timestampGranularityMs;
  describe("ingests", () => {
    ctx.test("resume after close continues at the same offset with identical status", async (store) => {
      const b = blob(20_000);
      const w = await store.writer({ ref: "res-1", total: b.size, expected: b.digest });
      await w.write(b.data.subarray(0, 7000));
      const before = await w.status();
      await w.close();
      await w.close(); // idempotent
      // Let the clock move so a rewritten timestamp would show.
      await sleep(Math.max(5, g + 5));
      const w2 = await store.writer({ ref: "res-1", total: b.size, expected: b.digest });
      const after = await w2.status();
      expectSameStatus(before, after);
      expect(after.expected).toBe(b.digest);
      expectSameStatus(before, await store.status("res-1"));
      expect(w2.digest()).toBe(digestOf(b.data.subarray(0, 7000)));
      await w2.write(b.data.subarray(7000));
      expect(w2.digest()).toBe(b.digest);
      await w2.commit(b.size, b.digest);
      expect(Buffer.from(await readAll(store, b.digest)).equals(b.data)).toBe(true);
    });

    ctx.test("truncate(0) restarts the ingest", async (store) => {
      const b = blob(4000);
      const w = await store.writer({ ref: "tr-1", total: b.size });
      await w.write(text("not the right bytes at all"));
      await w.truncate(0);
      expect((await w.status()).offset).toBe(0);
      expect(w.digest()).toBe(digestOf(new Uint8Array(0)));
      await w.write(b.data);
      await w.commit(b.size, b.digest);
      expect(Buffer.from(await readAll(store, b.digest)).equals(b.data)).toBe(true);
    });

    ctx.test("a second writer on a held ref gets Locked until the first closes", async (store) => {
      const w = await store.writer({ ref: "lk-1" });
      await w.write(text("abc"));
      await expectCode(store.writer({ ref: "lk-1" }), "Locked");
      // Other refs are independent.
      const other = await store.writer({ ref: "lk-2" });
      await other.close();
      await w.close();
      const w2 = await store.writer({ ref: "lk-1" });
      expect((await w2.status()).offset).toBe(3);
      await w2.close();
    });

    ctx.test("two writers opened at once on one ref: exactly one gets it", async (store) => {
      const results = await Promise.allSettled([store.writer({ ref: "race" }), store.writer({ ref: "race" })]);
      const opened = results.filter((r) => r.status === "fulfilled");
      const refused = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
      expect(opened).toHaveLength(1);
      expect(refused).toHaveLength(1);
      expect(refused[0]?.reason).toMatchObject({ code: "Locked" });
      await (opened[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof store.writer>>>).value.close();
    });

    ctx.test("abort removes the ingest; aborting a held ref is Locked", async (store) => {
      const w = await store.writer({ ref: "ab-1", total: 10 });
      await w.write(text("12345"));
      await expectCode(store.abort("ab-1"), "Locked");
      expect((await store.status("ab-1")).offset).toBe(5);
      await w.close();
      await store.abort("ab-1");
      await expectCode(store.status("ab-1"), "NotFound");
      await expectCode(store.abort("ab-1"), "NotFound");
      expect((await store.listStatuses()).map((s) => s.ref)).not.toContain("ab-1");
      // Reopening starts from scratch.
      const w2 = await store.writer({ ref: "ab-1" });
      expect((await w2.status()).offset).toBe(0);
      await w2.close();
    });

    ctx.test("listStatuses shows active ingests and filters by ref prefix", async (store) => {
      const specs = [
        { ref: "list-a-1", total: 100, write: 10 },
        { ref: "list-a-2", total: 200, write: 20 },
        { ref: "list-b-1", total: 0, write: 30 },
      ];
      for (const s of specs) {
        const w = await store.writer({ ref: s.ref, total: s.total });
        await w.write(new Uint8Array(s.write));
        await w.close();
      }
      // One still held by a writer is listed too.
      const held = await store.writer({ ref: "list-a-3", total: 7 });
      await held.write(new Uint8Array(3));
      const all = await store.listStatuses();
      const byRef = new Map(all.map((s) => [s.ref, s]));
      for (const s of specs) expect(byRef.get(s.ref)).toMatchObject({ offset: s.write, total: s.total });
      expect(byRef.get("list-a-3")).toMatchObject({ offset: 3, total: 7 });
      const a = await store.listStatuses({ refPrefix: "list-a-" });
      expect(a.map((s) => s.ref).sort()).toEqual(["list-a-1", "list-a-2", "list-a-3"]);
      expect(await store.listStatuses({ refPrefix: "nothing-" })).toEqual([]);
      await held.close();
    });

    ctx.test("reopen with a different total or expected digest is refused; expected persists", async (store) => {
      const b = blob(10);
      const w = await store.writer({ ref: "re-1", total: 10, expected: b.digest });
      await w.write(b.data.subarray(0, 4));
      await w.close();
      await expectCode(store.writer({ ref: "re-1", total: 11 }), "FailedPrecondition");
      await expectCode(store.writer({ ref: "re-1", expected: digestOf("other") }), "FailedPrecondition");
      // Same values, or none, resume; the persisted ones are reported.
      const same = await store.writer({ ref: "re-1", total: 10, expected: b.digest });
      await same.close();
      const bare = await store.writer({ ref: "re-1" });
      const s = await bare.status();
      expect(s).toMatchObject({ offset: 4, total: 10, expected: b.digest });
      expect((await store.status("re-1")).expected).toBe(b.digest);
      await bare.write(b.data.subarray(4));
      await bare.commit();
      expect((await store.info(b.digest)).size).toBe(10);
    });
  });
}
