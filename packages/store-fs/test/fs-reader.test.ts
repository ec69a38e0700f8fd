import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { digestOf } from "@ferry/core";
import { openFsStore, type FsStore } from "../src/index.ts";
import { bytes, codeOf, tempDir } from "./helpers.ts";

let dir: { path: string; cleanup: () => Promise<void> };
let store: FsStore;

beforeEach(async () => {
  dir = await tempDir();
  store = await openFsStore(dir.path);
});

afterEach(async () => {
  await dir.cleanup();
});

describe("FsReaderAt.readInto", () => {
  it("fills the caller's buffer at any offset, short at the end, 0 past it", async () => {
    const data = bytes(3 * 1024 * 1024 + 5);
    const w = await store.writer({ ref: "into", total: data.byteLength });
    await w.write(data);
    await w.commit(data.byteLength, digestOf(data));
    const r = await store.readerAt({ digest: digestOf(data) });
    const buf = Buffer.alloc(1024 * 1024);
    expect(await r.readInto!(buf, 1_000_000)).toBe(buf.byteLength);
    expect(buf.equals(data.subarray(1_000_000, 1_000_000 + buf.byteLength))).toBe(true);
    // The same buffer again: its bytes are replaced, nothing is allocated.
    expect(await r.readInto!(buf, data.byteLength - 10)).toBe(10);
    expect(buf.subarray(0, 10).equals(data.subarray(data.byteLength - 10))).toBe(true);
    expect(await r.readInto!(buf, data.byteLength)).toBe(0);
    expect(await r.readInto!(buf.subarray(0, 0), 0)).toBe(0);
    expect(await codeOf(r.readInto!(buf, -1))).toBe("InvalidArgument");
    await r.close();
    expect(await codeOf(r.readInto!(buf, 0))).toBe("FailedPrecondition");
  });
});
