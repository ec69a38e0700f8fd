import { describe, expect } from "vitest";
import type { Descriptor } from "../descriptor.ts";
import { digestOf } from "../digest.ts";
import { MediaTypes } from "../media-types.ts";
import type { SuiteContext } from "./context.ts";
import { expectCode } from "./fixtures.ts";

/** Named roots (tags). */
export function nameCases(ctx: SuiteContext): void {
  describe("names", () => {
    ctx.test("get, set, list and delete names", async (store) => {
      const one: Descriptor = {
        mediaType: MediaTypes.OciIndex,
        digest: digestOf("index one"),
        size: 9,
        // Not the ref-name annotation: a layout store may own that one.
        annotations: { "org.example.note": "first" },
      };
      const two: Descriptor = { mediaType: MediaTypes.OciManifest, digest: digestOf("manifest two"), size: 12 };
      await expectCode(store.getName("v1"), "NotFound");
      expect(await store.listNames()).toEqual([]);
      await store.setName("v1", one);
      await store.setName("example.com/repo:v2", two);
      expect(await store.getName("v1")).toEqual(one);
      expect(await store.getName("example.com/repo:v2")).toEqual(two);
      const listed = await store.listNames();
      expect(listed.map((n) => n.name).sort()).toEqual(["example.com/repo:v2", "v1"]);
      expect(listed.find((n) => n.name === "v1")?.descriptor).toEqual(one);
      // Overwrite moves the name.
      await store.setName("v1", two);
      expect(await store.getName("v1")).toEqual(two);
      await store.deleteName("v1");
      await expectCode(store.getName("v1"), "NotFound");
      expect((await store.listNames()).map((n) => n.name)).toEqual(["example.com/repo:v2"]);
    });

    ctx.test("a stored descriptor is a copy, not a live reference", async (store) => {
      const desc: Descriptor = { mediaType: MediaTypes.OciManifest, digest: digestOf("m"), size: 1, annotations: { a: "1" } };
      await store.setName("n", desc);
      desc.size = 99;
      (desc.annotations as Record<string, string>).a = "changed";
      expect(await store.getName("n")).toMatchObject({ size: 1, annotations: { a: "1" } });
    });
  });
}
