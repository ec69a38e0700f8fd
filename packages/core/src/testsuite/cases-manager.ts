import { describe, expect } from "vitest";
import type { ContentStore, Info, WalkFilter } from "../content.ts";
import { type Digest, digestOf } from "../digest.ts";
import type { SuiteContext } from "./context.ts";
import { blob, expectCode, sleep, text } from "./fixtures.ts";

async function put(store: ContentStore, data: Uint8Array, labels?: Record<string, string>): Promise<Digest> {
  const digest = digestOf(data);
  const w = await store.writer({ ref: `put-${digest}` });
  await w.write(data);
  await w.commit(data.byteLength, digest, { labels });
  return digest;
}

async function walked(store: ContentStore, filter?: WalkFilter): Promise<Info[]> {
  const out: Info[] = [];
  await store.walk((info) => {
    out.push(info);
  }, filter);
  return out;
}

/** Info, labels, walk, delete and digest validation. */
export function managerCases(ctx: SuiteContext): void {
  const g = ctx.options.timestampGranularityMs;
  describe("manager", () => {
    ctx.test("labels: set at commit, replaced wholesale, updated and removed by field path", async (store) => {
      const d = await put(store, text("labelled"), { a: "1", b: "2" });
      const first = await store.info(d);
      expect(first.labels).toEqual({ a: "1", b: "2" });
      await sleep(g + 5);
      // No field paths: replace all.
      let info = await store.update({ digest: d, labels: { c: "3" } });
      expect(info.labels).toEqual({ c: "3" });
      expect(info.updatedAt.getTime()).toBeGreaterThan(first.updatedAt.getTime());
      expect(info.createdAt.getTime()).toBe(first.createdAt.getTime());
      expect((await store.info(d)).labels).toEqual({ c: "3" });
      // One key by path; other keys in the update are ignored.
      info = await store.update({ digest: d, labels: { d: "4", ignored: "x" } }, ["labels.d"]);
      expect(info.labels).toEqual({ c: "3", d: "4" });
      // Overwrite one key.
      info = await store.update({ digest: d, labels: { c: "33" } }, ["labels.c"]);
      expect(info.labels).toEqual({ c: "33", d: "4" });
      // An absent value removes the key.
      info = await store.update({ digest: d, labels: {} }, ["labels.c"]);
      expect(info.labels).toEqual({ d: "4" });
      // The whole map by path.
      info = await store.update({ digest: d, labels: { e: "5" } }, ["labels"]);
      expect(info.labels).toEqual({ e: "5" });
      expect((await store.info(d)).labels).toEqual({ e: "5" });
      // Removing every label.
      info = await store.update({ digest: d }, ["labels"]);
      expect(info.labels).toEqual({});
      await expectCode(store.update({ digest: digestOf("absent"), labels: { x: "1" } }), "NotFound");
    });

    ctx.test("walk lists every blob and filters by label and algorithm", async (store) => {
      const d1 = await put(store, text("one"), { "ferry.test/kind": "layer", gc: "keep" });
      const d2 = await put(store, text("two"), { "ferry.test/kind": "config" });
      const d3 = await put(store, text("three"));
      const all = await walked(store);
      expect(all.map((i) => i.digest).sort()).toEqual([d1, d2, d3].sort());
      expect(all.find((i) => i.digest === d1)).toMatchObject({ size: 3, labels: { gc: "keep" } });
      const layers = await walked(store, { labels: { "ferry.test/kind": "layer" } });
      expect(layers.map((i) => i.digest)).toEqual([d1]);
      const kinds = await walked(store, { labels: { "ferry.test/kind": true } });
      expect(kinds.map((i) => i.digest).sort()).toEqual([d1, d2].sort());
      const both = await walked(store, { labels: { "ferry.test/kind": "layer", gc: true } });
      expect(both.map((i) => i.digest)).toEqual([d1]);
      expect(await walked(store, { labels: { "ferry.test/kind": "nope" } })).toEqual([]);
      expect((await walked(store, { algorithm: "sha256" })).length).toBe(3);
      expect(await walked(store, { algorithm: "sha512" })).toEqual([]);
    });

    ctx.test("walk does not list uncommitted ingests", async (store) => {
      const w = await store.writer({ ref: "walk-ingest" });
      await w.write(text("pending"));
      await w.close();
      expect(await walked(store)).toEqual([]);
    });

    ctx.test("delete, then info, readerAt and delete report NotFound", async (store) => {
      const b = blob(1234);
      const d = await put(store, b.data);
      const keep = await put(store, text("keep me"));
      await store.delete(d);
      await expectCode(store.info(d), "NotFound");
      await expectCode(store.readerAt({ digest: d }), "NotFound");
      await expectCode(store.delete(d), "NotFound");
      expect((await walked(store)).map((i) => i.digest)).toEqual([keep]);
      // It can be written again.
      await put(store, b.data);
      expect((await store.info(d)).size).toBe(1234);
    });

    ctx.test("invalid digests are refused with InvalidDigest", async (store) => {
      const bad = ["sha256:xyz", "md5:d41d8cd98f00b204e9800998ecf8427e", "", `sha256:${"A".repeat(64)}`, "sha256"];
      for (const b of bad) {
        const d = b as Digest;
        await expectCode(store.info(d), "InvalidDigest");
        await expectCode(store.readerAt({ digest: d }), "InvalidDigest");
        await expectCode(store.delete(d), "InvalidDigest");
      }
    });
  });
}
