import { describe, expect } from "vitest";
import { readBlob } from "../content-helpers/read-blob.ts";
import { digestOf } from "../digest.ts";
import type { SuiteContext } from "./context.ts";
import { blob, expectCode, expectWithin, readAll, sleep, text, writeChunks } from "./fixtures.ts";

/** Writing, committing and the commit's failure modes. */
export function commitCases(ctx: SuiteContext): void {
  const g = ctx.options.timestampGranularityMs;
  describe("write and commit", () => {
    ctx.test("write, commit and read back", async (store) => {
      const b = blob(100_000);
      const before = Date.now();
      const w = await store.writer({ ref: "rw-1", total: b.size, expected: b.digest });
      await writeChunks(w, b.data, 7000);
      expect(w.digest()).toBe(b.digest);
      // Invisible to readers until committed.
      await expectCode(store.readerAt({ digest: b.digest }), "NotFound");
      await expectCode(store.info(b.digest), "NotFound");
      await w.commit(b.size, b.digest, { labels: { origin: "suite" } });
      const after = Date.now();
      const info = await store.info(b.digest);
      expect(info.digest).toBe(b.digest);
      expect(info.size).toBe(b.size);
      expect(info.labels).toEqual({ origin: "suite" });
      expectWithin(info.createdAt, before, after, g, "createdAt");
      expectWithin(info.updatedAt, before, after, g, "updatedAt");
      expect(Buffer.from(await readAll(store, b.digest)).equals(b.data)).toBe(true);
      expect(Buffer.from(await readBlob(store, b)).equals(b.data)).toBe(true);
      // The ingest is gone once committed.
      await expectCode(store.status("rw-1"), "NotFound");
      expect((await store.listStatuses()).map((s) => s.ref)).not.toContain("rw-1");
      // The ref is free for a new, empty ingest.
      const next = await store.writer({ ref: "rw-1" });
      expect((await next.status()).offset).toBe(0);
      await next.close();
    });

    ctx.test("status while writing reports offset, total, running digest and timestamps", async (store) => {
      const b = blob(10_000);
      const before = Date.now();
      const w = await store.writer({ ref: "st-1", total: b.size });
      let s = await w.status();
      expect(s).toMatchObject({ ref: "st-1", offset: 0, total: b.size });
      expectWithin(s.startedAt, before, Date.now(), g, "startedAt");
      // Let the clock pass the store's granularity so a stale updatedAt shows.
      await sleep(g + 10);
      const beforeWrite = Date.now();
      await w.write(b.data.subarray(0, 4000));
      s = await w.status();
      expect(s.offset).toBe(4000);
      expectWithin(s.updatedAt, beforeWrite, Date.now(), g, "updatedAt after a write");
      expect(w.digest()).toBe(digestOf(b.data.subarray(0, 4000)));
      expect(s.updatedAt.getTime()).toBeGreaterThanOrEqual(s.startedAt.getTime());
      const fromManager = await store.status("st-1");
      expect(fromManager).toMatchObject({ ref: "st-1", offset: 4000, total: b.size });
      await w.write(b.data.subarray(4000));
      expect(w.digest()).toBe(b.digest);
      expect((await w.status()).offset).toBe(b.size);
      await w.commit(b.size, b.digest);
    });

    ctx.test("commit with a wrong size fails, commits nothing and keeps the ingest for retry", async (store) => {
      const b = blob(5000);
      const w = await store.writer({ ref: "ws-1" });
      await w.write(b.data);
      await expectCode(w.commit(b.size + 1, b.digest), "SizeMismatch");
      await expectCode(store.info(b.digest), "NotFound");
      await expectCode(store.readerAt({ digest: b.digest }), "NotFound");
      // Commit closed the writer: the ref is free and the data survives.
      const again = await store.writer({ ref: "ws-1" });
      expect((await again.status()).offset).toBe(b.size);
      expect(again.digest()).toBe(b.digest);
      await again.commit(b.size, b.digest);
      expect((await store.info(b.digest)).size).toBe(b.size);
    });

    ctx.test("commit with a wrong digest fails, commits nothing and keeps the ingest for retry", async (store) => {
      const b = blob(5000);
      const wrong = digestOf("something else");
      const w = await store.writer({ ref: "wd-1" });
      await w.write(b.data);
      await expectCode(w.commit(b.size, wrong), "DigestMismatch");
      await expectCode(store.info(b.digest), "NotFound");
      await expectCode(store.info(wrong), "NotFound");
      const again = await store.writer({ ref: "wd-1" });
      expect((await again.status()).offset).toBe(b.size);
      await again.commit(b.size, b.digest);
      expect(Buffer.from(await readAll(store, b.digest)).equals(b.data)).toBe(true);
    });

    ctx.test("commit of existing content reports AlreadyExists and the ingest can still be aborted", async (store) => {
      const b = blob(3000);
      const first = await store.writer({ ref: "ex-1" });
      await first.write(b.data);
      await first.commit(b.size, b.digest, { labels: { keep: "me" } });
      const second = await store.writer({ ref: "ex-2" });
      await second.write(b.data);
      await expectCode(second.commit(b.size, b.digest, { labels: { other: "x" } }), "AlreadyExists");
      // The existing blob is untouched.
      expect((await store.info(b.digest)).labels).toEqual({ keep: "me" });
      // Commit closed the writer and kept the ingest: the ref is not locked and can be aborted.
      expect((await store.status("ex-2")).offset).toBe(b.size);
      await store.abort("ex-2");
      await expectCode(store.status("ex-2"), "NotFound");
    });

    ctx.test("the commit error-state sequence", async (store) => {
      const a = blob(256);
      const b = blob(256);
      const seeded = await store.writer({ ref: "seq-seed" });
      await seeded.write(a.data);
      await seeded.commit(a.size, a.digest);

      // 1. A second writer on a held ref is refused.
      let w = await store.writer({ ref: "seq" });
      await expectCode(store.writer({ ref: "seq" }), "Locked");
      // 2. Existing content.
      await w.write(a.data);
      await expectCode(w.commit(a.size, a.digest), "AlreadyExists");
      await store.abort("seq");
      // 3. Wrong digest.
      w = await store.writer({ ref: "seq" });
      await w.truncate(0);
      await w.write(b.data);
      await expectCode(w.commit(b.size, digestOf("nope")), "DigestMismatch");
      // 4. Wrong size: the bytes written before survive each failed commit.
      w = await store.writer({ ref: "seq" });
      expect((await w.status()).offset).toBe(b.size);
      await expectCode(w.commit(b.size - 1, b.digest), "SizeMismatch");
      // 5. Success with the surviving bytes.
      w = await store.writer({ ref: "seq" });
      expect(w.digest()).toBe(b.digest);
      await w.commit(b.size, b.digest);
      expect(Buffer.from(await readAll(store, b.digest)).equals(b.data)).toBe(true);
      await expectCode(store.status("seq"), "NotFound");
      // 6. Truncate twice in a row is harmless.
      w = await store.writer({ ref: "seq-t" });
      await w.write(text("garbage"));
      await w.truncate(0);
      await w.truncate(0);
      expect((await w.status()).offset).toBe(0);
      const c = blob(100);
      await w.write(c.data);
      await w.commit(c.size, c.digest);
      expect((await store.info(c.digest)).size).toBe(100);
    });

    ctx.test("the empty blob", async (store) => {
      const empty = digestOf(new Uint8Array(0));
      const w = await store.writer({ ref: "empty", total: 0, expected: empty });
      expect(w.digest()).toBe(empty);
      await w.commit(0, empty);
      const info = await store.info(empty);
      expect(info.size).toBe(0);
      const ra = await store.readerAt({ digest: empty });
      try {
        expect(ra.size).toBe(0);
        expect((await ra.read(0, 10)).byteLength).toBe(0);
      } finally {
        await ra.close();
      }
      expect((await readAll(store, empty)).byteLength).toBe(0);
    });

    ctx.test("writers opened with and without size and digest, committed with and without them", async (store) => {
      // containerd's matrix: what the writer was opened with × what the commit names.
      const cases = [
        { open: {}, commit: "both" },
        { open: {}, commit: "none" },
        { open: { total: true }, commit: "digest" },
        { open: { expected: true }, commit: "size" },
        { open: { total: true, expected: true }, commit: "none" },
        { open: { total: true, expected: true }, commit: "both" },
      ] as const;
      for (const [i, c] of cases.entries()) {
        const b = blob(3000 + i);
        const w = await store.writer({
          ref: `matrix-${i}`,
          ...("total" in c.open ? { total: b.size } : {}),
          ...("expected" in c.open ? { expected: b.digest } : {}),
        });
        const s = await w.status();
        expect(s.total, `case ${i}: total`).toBe("total" in c.open ? b.size : 0);
        expect(s.expected, `case ${i}: expected`).toBe("expected" in c.open ? b.digest : undefined);
        await writeChunks(w, b.data, 1000);
        const size = c.commit === "both" || c.commit === "size" ? b.size : undefined;
        const digest = c.commit === "both" || c.commit === "digest" ? b.digest : undefined;
        await w.commit(size, digest);
        const info = await store.info(b.digest);
        expect(info.size, `case ${i}: committed size`).toBe(b.size);
        await expectCode(store.status(`matrix-${i}`), "NotFound");
      }
    });

    ctx.test("a commit without arguments still checks the digest given at open", async (store) => {
      const b = blob(1000);
      const w = await store.writer({ ref: "exp-check", expected: b.digest });
      await w.write(blob(1000).data);
      await expectCode(w.commit(), "DigestMismatch");
      await expectCode(store.info(b.digest), "NotFound");
      const again = await store.writer({ ref: "exp-check" });
      await again.truncate(0);
      await again.write(b.data);
      await again.commit();
      expect((await store.info(b.digest)).size).toBe(1000);
    });
  });
}
