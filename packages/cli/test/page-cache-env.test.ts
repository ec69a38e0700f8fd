/** FERRY_PAGE_CACHE: the CLI's stores write big blobs with O_DIRECT unless it is set. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { directIoSupported } from "@ferry/testkit";
import { afterEach, expect, it } from "vitest";
import type { FsWriter } from "@ferry/store-fs";
import { layoutOptions, openLayout } from "../src/store.ts";

const dirs: string[] = [];
afterEach(async () => {
  delete process.env.FERRY_PAGE_CACHE;
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});


it("maps FERRY_PAGE_CACHE to store-fs options: set (not 0 or empty) turns direct writes off", () => {
  expect(layoutOptions({})).toEqual({});
  expect(layoutOptions({ FERRY_PAGE_CACHE: "0" })).toEqual({});
  expect(layoutOptions({ FERRY_PAGE_CACHE: "" })).toEqual({});
  expect(layoutOptions({ FERRY_PAGE_CACHE: "1" })).toEqual({ directWriteMinBytes: Number.POSITIVE_INFINITY });
});

it("a layout opened by the CLI writes a 16 MiB blob directly, or through the page cache with FERRY_PAGE_CACHE=1", async () => {
  const dir = await mkdtemp(join(tmpdir(), "ferry-cli-pagecache-"));
  dirs.push(dir);
  const direct = directIoSupported(dir);
  const store = await openLayout(join(dir, "a"), false);
  const w = (await store.writer({ ref: "big", total: 16 * 1024 * 1024 })) as FsWriter;
  expect(w.direct).toBe(direct);
  await w.close();
  process.env.FERRY_PAGE_CACHE = "1";
  const cached = await openLayout(join(dir, "b"), false);
  const v = (await cached.writer({ ref: "big", total: 16 * 1024 * 1024 })) as FsWriter;
  expect(v.direct).toBe(false);
  await v.close();
});
