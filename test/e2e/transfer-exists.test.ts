import { describe, expect, it } from "vitest";
import { copy, type Descriptor, isManifestLike, LocalPusher, MemoryStore, type PushOptions, type PushSource, type Pusher, type Resolver } from "./deps.ts";
import { collect, syntheticImage } from "./fixtures.ts";

/** A destination whose pusher counts `exists` and `push` calls, in front of a store. */
function countingDestination(store: MemoryStore) {
  const exists: Descriptor[] = [];
  const pushed: Descriptor[] = [];
  const local = new LocalPusher(store);
  const pusher: Pusher = {
    exists: (d, o) => {
      exists.push(d);
      return local.exists(d, o);
    },
    push: (d: Descriptor, s: PushSource, o?: PushOptions) => {
      pushed.push(d);
      return local.push(d, s, o);
    },
    tag: (d, t, o) => local.tag(d, t, o),
  };
  const resolver: Resolver = {
    resolve: async () => {
      throw new Error("not a source");
    },
    fetcher: async () => {
      throw new Error("not a source");
    },
    pusher: async () => pusher,
  };
  return { resolver, exists, pushed };
}

describe("existence checks of a transfer", () => {
  it("asks the destination about manifests only; a blob is checked once, by push", async () => {
    const src = new MemoryStore();
    const img = await syntheticImage(src, { name: "x" });
    const dst = new MemoryStore();
    // The destination already holds one layer.
    const held = img.layers[0]!;
    const w = await dst.writer({ ref: "held", total: held.size, expected: held.digest });
    await w.write(img.bytes.get(held.digest)!);
    await w.commit(held.size, held.digest);

    const { resolver, exists, pushed } = countingDestination(dst);
    const op = copy("x", "127.0.0.1:1/repo:1", { from: src, to: resolver });
    const events = collect(op);
    await op.done;

    expect(exists.every((d) => isManifestLike(d.mediaType))).toBe(true);
    expect(exists.length).toBeGreaterThan(0);
    // Every blob went to push exactly once; the held one ended as `exists`, the rest as `done`.
    const blobs = img.all.filter((d) => !isManifestLike(d.mediaType));
    expect(pushed.filter((d) => !isManifestLike(d.mediaType)).map((d) => d.digest).sort()).toEqual(blobs.map((d) => d.digest).sort());
    const list = await events;
    expect(list.filter((e) => e.type === "exists").map((e) => (e as { digest: string }).digest)).toEqual([held.digest]);
    expect(list.filter((e) => e.type === "done" && !isManifestLike((e as { mediaType: string }).mediaType))).toHaveLength(blobs.length - 1);
  });

  it("still skips the whole sub-graph of a manifest the destination has", async () => {
    const src = new MemoryStore();
    const img = await syntheticImage(src, { name: "x" });
    const dst = new MemoryStore();
    await copy("x", "x", { from: src, to: dst }).done;

    const { resolver, pushed } = countingDestination(dst);
    const op = copy("x", "127.0.0.1:1/repo:1", { from: src, to: resolver });
    const events = collect(op);
    await op.done;
    // The index is looked into (it may hold only some platforms); its manifests exist, so no config or layer is pushed.
    expect(pushed.filter((d) => !isManifestLike(d.mediaType))).toEqual([]);
    const list = await events;
    expect(list.filter((e) => e.type === "exists").length).toBe(img.manifests.length + 1);
  });
});
