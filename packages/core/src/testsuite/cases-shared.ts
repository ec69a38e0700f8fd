import { describe, expect } from "vitest";
import { digestOf } from "../digest.ts";
import { MediaTypes } from "../media-types.ts";
import type { SuiteContext } from "./context.ts";
import { blob, expectCode, expectSameStatus, readAll } from "./fixtures.ts";

/** Two handles on one storage (two processes): what one does, the other sees and respects. */
export function sharedCases(ctx: SuiteContext): void {
  describe("shared storage (second handle)", () => {
    ctx.testShared("an ingest started in one handle resumes in the other with identical status", async (a, b) => {
      const x = blob(30_000);
      const w = await a.writer({ ref: "sh-res", total: x.size, expected: x.digest });
      await w.write(x.data.subarray(0, 12_345));
      const before = await w.status();
      await w.close();
      expectSameStatus(before, await b.status("sh-res"));
      expect((await b.listStatuses({ refPrefix: "sh-" })).map((s) => s.ref)).toEqual(["sh-res"]);
      const w2 = await b.writer({ ref: "sh-res", total: x.size, expected: x.digest });
      expectSameStatus(before, await w2.status());
      expect(w2.digest()).toBe(digestOf(x.data.subarray(0, 12_345)));
      await w2.write(x.data.subarray(12_345));
      await w2.commit(x.size, x.digest);
      expect(Buffer.from(await readAll(a, x.digest)).equals(x.data)).toBe(true);
      await expectCode(a.status("sh-res"), "NotFound");
    });

    ctx.testShared("a ref held through one handle is Locked through the other", async (a, b) => {
      const w = await a.writer({ ref: "sh-lock" });
      await w.write(new Uint8Array(10));
      await expectCode(b.writer({ ref: "sh-lock" }), "Locked");
      await expectCode(b.abort("sh-lock"), "Locked");
      await w.close();
      const w2 = await b.writer({ ref: "sh-lock" });
      expect((await w2.status()).offset).toBe(10);
      await expectCode(a.writer({ ref: "sh-lock" }), "Locked");
      await w2.close();
      await a.abort("sh-lock");
      await expectCode(b.status("sh-lock"), "NotFound");
    });

    ctx.testShared("the same content committed through both handles: one wins", async (a, b) => {
      const x = blob(50_000);
      const [w1, w2] = await Promise.all([a.writer({ ref: "sh-1" }), b.writer({ ref: "sh-2" })]);
      await Promise.all([w1.write(x.data), w2.write(x.data)]);
      const results = await Promise.allSettled([w1.commit(x.size, x.digest), w2.commit(x.size, x.digest)]);
      expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
      const lost = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
      expect(lost?.reason).toMatchObject({ code: "AlreadyExists" });
      expect(Buffer.from(await readAll(b, x.digest)).equals(x.data)).toBe(true);
    });

    ctx.testShared("blobs, labels, deletes and names are visible across handles", async (a, b) => {
      const x = blob(1000);
      const w = await a.writer({ ref: "sh-vis" });
      await w.write(x.data);
      await w.commit(x.size, x.digest, { labels: { k: "v" } });
      expect(await b.info(x.digest)).toMatchObject({ size: x.size, labels: { k: "v" } });
      await b.update({ digest: x.digest, labels: { k: "w" } }, ["labels.k"]);
      expect((await a.info(x.digest)).labels).toEqual({ k: "w" });
      const desc = { mediaType: MediaTypes.OciManifest, digest: x.digest, size: x.size };
      await a.setName("sh-name", desc);
      expect(await b.getName("sh-name")).toEqual(desc);
      await b.delete(x.digest);
      await expectCode(a.info(x.digest), "NotFound");
      await b.deleteName("sh-name");
      await expectCode(a.getName("sh-name"), "NotFound");
    });
  });
}
