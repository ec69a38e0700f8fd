import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseDigest, type Descriptor } from "@ferry/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FsRegistryStorage, MemoryRegistryStorage, type RegistryStorage } from "../src/index.ts";
import { sha256 } from "./helpers.ts";

const d1 = parseDigest(sha256("one"));
const d2 = parseDigest(sha256("two"));
const desc = (digest: typeof d1): Descriptor => ({ mediaType: "application/vnd.oci.image.manifest.v1+json", digest, size: 3 });

describe.each([
  ["memory", async () => ({ storage: new MemoryRegistryStorage() as RegistryStorage, cleanup: async () => undefined })],
  [
    "fs",
    async () => {
      const dir = await mkdtemp(join(tmpdir(), "ferry-regstorage-"));
      return { storage: new FsRegistryStorage(dir) as RegistryStorage, cleanup: () => rm(dir, { recursive: true, force: true }) };
    },
  ],
])("%s registry storage", (_name, make) => {
  let s: RegistryStorage;
  let cleanup: () => Promise<unknown>;
  beforeEach(async () => {
    ({ storage: s, cleanup } = await make());
  });
  afterEach(async () => cleanup());

  it("links blobs per repository", async () => {
    expect(await s.hasRepository("a/b")).toBe(false);
    await s.linkBlob("a/b", d1, 3);
    expect(await s.blobLink("a/b", d1)).toEqual({ size: 3 });
    expect(await s.blobLink("a/c", d1)).toBeUndefined();
    expect(await s.hasRepository("a/b")).toBe(true);
    expect(await s.unlinkBlob("a/b", d1)).toBe(true);
    expect(await s.unlinkBlob("a/b", d1)).toBe(false);
    expect(await s.hasRepository("a/b")).toBe(false);
  });

  it("keeps manifests, tags (sorted) and the catalog (sorted, nested names)", async () => {
    await s.linkManifest("x", { digest: d1, size: 3, mediaType: "m", subject: d2 });
    expect(await s.manifestLink("x", d1)).toEqual({ digest: d1, size: 3, mediaType: "m", subject: d2 });
    await s.setTag("x", "v2", desc(d1));
    await s.setTag("x", "V1", desc(d1));
    await s.setTag("x", "v1", desc(d2));
    expect(await s.listTags("x")).toEqual(["V1", "v1", "v2"]);
    expect((await s.getTag("x", "v1"))?.digest).toBe(d2);
    expect(await s.deleteTag("x", "v1")).toBe(true);
    expect(await s.getTag("x", "v1")).toBeUndefined();
    await s.linkBlob("x/y/z", d1, 1);
    await s.linkBlob("w", d1, 1);
    expect(await s.listRepositories()).toEqual(["w", "x", "x/y/z"]);
    expect(await s.unlinkManifest("x", d1)).toBe(true);
  });

  it("indexes referrers by subject", async () => {
    await s.addReferrer("r", d1, { ...desc(d2), artifactType: "t" });
    expect(await s.listReferrers("r", d1)).toEqual([{ ...desc(d2), artifactType: "t" }]);
    expect(await s.listReferrers("r", d2)).toEqual([]);
    await s.removeReferrer("r", d1, d2);
    expect(await s.listReferrers("r", d1)).toEqual([]);
  });

  it("stores upload sessions", async () => {
    const session = { uuid: "0f8fad5b-d9cb-469f-a165-70867728950e", repository: "r", startedAt: "2026-01-01T00:00:00.000Z", updatedAt: "2026-01-01T00:00:00.000Z" };
    await s.putUpload(session);
    expect(await s.getUpload(session.uuid)).toEqual(session);
    expect(await s.listUploads()).toEqual([session]);
    await s.deleteUpload(session.uuid);
    expect(await s.getUpload(session.uuid)).toBeUndefined();
  });
});

describe("fs registry storage on hostile input", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-regstorage-"));
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  it("refuses names, tags and upload ids that could leave its root", async () => {
    const s = new FsRegistryStorage(join(dir, "root"));
    await expect(s.linkBlob("../evil", d1, 1)).rejects.toMatchObject({ code: "InvalidArgument" });
    await expect(s.setTag("ok", "../../x", desc(d1))).rejects.toMatchObject({ code: "InvalidArgument" });
    await expect(s.putUpload({ uuid: "../x", repository: "ok", startedAt: "", updatedAt: "" })).rejects.toMatchObject({ code: "InvalidArgument" });
    expect(await s.getUpload("../../etc/passwd")).toBeUndefined();
    expect(await readdir(dir)).toEqual([]);
  });

  it("leaves no temporary files behind", async () => {
    const s = new FsRegistryStorage(dir);
    await Promise.all(Array.from({ length: 20 }, (_, i) => s.setTag("race", "t", desc(i % 2 === 0 ? d1 : d2))));
    expect(await readdir(join(dir, "repositories", "race", "_tags"))).toEqual(["t.json"]);
    expect([d1, d2]).toContain((await s.getTag("race", "t"))?.digest);
  });
});
