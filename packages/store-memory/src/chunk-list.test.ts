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

  it("after a large append, small ones fill the same tail buffer; sealed, a small blob keeps no 64 KiB buffer", () => {
    const list = new ChunkList();
    const parts: Uint8Array[] = [];
    for (let i = 0; i < 20; i++) parts.push(new Uint8Array(randomBytes(i % 2 === 0 ? 20_000 : 100)));
    for (const p of parts) list.append(p);
    const buffers = new Set([...list.views()].map((v) => v.buffer));
    // 10 large copies and one shared tail (a tail per small append made 10).
    expect(buffers.size).toBe(11);
    expect(Buffer.concat([...list.views()]).equals(Buffer.concat(parts))).toBe(true);

    const small = new ChunkList();
    small.append(new Uint8Array(200).fill(7));
    small.seal();
    const views = [...small.views()];
    expect(views.map((v) => v.buffer.byteLength)).toEqual([200]);
    expect(Buffer.from(small.read(0, 200)).equals(Buffer.alloc(200, 7))).toBe(true);
  });
});
