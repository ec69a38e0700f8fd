import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ChunkList } from "./chunk-list.ts";

describe("ChunkList", () => {
  it("packs small appends and reads any range back", () => {
    const list = new ChunkList();
    const all = new Uint8Array(randomBytes(300_000));
    // Mixed tiny and large appends, including ones crossing the tail buffer's capacity.
    const sizes = [1, 7, 16_383, 16_384, 5, 70_000, 3, 3, 40_000];
    let at = 0;
    let i = 0;
    while (at < all.byteLength) {
      const n = Math.min(sizes[i++ % sizes.length] as number, all.byteLength - at);
      const part = all.slice(at, at + n);
      list.append(part);
      part.fill(0); // the list must have copied
      at += n;
    }
    expect(list.size).toBe(all.byteLength);
    for (const [off, len] of [[0, 1], [0, 300_000], [16_390, 100_000], [299_999, 10], [300_000, 1], [123, 0]] as const) {
      expect(Buffer.from(list.read(off, len)).equals(all.subarray(off, Math.min(off + len, all.byteLength)))).toBe(true);
    }
    const joined = Buffer.concat([...list.views(1000, 250_000)]);
    expect(joined.equals(all.subarray(1000, 250_000))).toBe(true);
  });
});
