// Tests of @ferry/core's content helpers against a real store (core cannot depend on a store).
import { Readable } from "node:stream";
import { randomBytes } from "node:crypto";
import {
  copyBlob,
  DefaultReadBlobMaxSize,
  digestOf,
  type Digest,
  FerryError,
  ingestRef,
  MediaTypes,
  readBlob,
  writeBlob,
} from "@ferry/core";
import { describe, expect, it } from "vitest";
import { MemoryStore } from "../src/index.ts";

function blob(size: number): { data: Uint8Array; digest: Digest; size: number; mediaType: string } {
  const data = new Uint8Array(randomBytes(size));
  return { data, digest: digestOf(data), size, mediaType: MediaTypes.OciLayerGzip };
}

function* chunks(data: Uint8Array, size = 1000): Generator<Uint8Array> {
  for (let o = 0; o < data.byteLength; o += size) yield data.subarray(o, Math.min(o + size, data.byteLength));
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return err instanceof FerryError ? err.code : `not a FerryError: ${String(err)}`;
  }
  return "resolved";
}

async function stored(store: MemoryStore, digest: Digest): Promise<Buffer> {
  const ra = await store.readerAt({ digest });
  const parts: Uint8Array[] = [];
  for await (const c of ra.createReadStream()) parts.push(c as Uint8Array);
  await ra.close();
  return Buffer.concat(parts);
}

/** Write the first `n` bytes of `b` under `ref` and leave the ingest behind. */
async function partial(store: MemoryStore, ref: string, b: ReturnType<typeof blob>, n: number): Promise<void> {
  const w = await store.writer({ ref, total: b.size, expected: b.digest });
  await w.write(b.data.subarray(0, n));
  await w.close();
}

describe("MemoryWriter commit", () => {
  it("publishes in the same step as it lets the ref go: a writer opened meanwhile cannot write into the blob", async () => {
    const store = new MemoryStore();
    const data = Buffer.from("hello world");
    const a = await store.writer({ ref: "r" });
    await a.write(data);
    const committing = a.commit(data.byteLength, digestOf(data));
    const b = await store.writer({ ref: "r" });
    await b.write(Buffer.from(" EXTRA"));
    await committing;
    expect(Buffer.from(await readBlob(store, { digest: digestOf(data), size: data.byteLength })).toString()).toBe("hello world");
    expect((await b.status()).offset).toBe(6); // a new ingest of its own
    await b.close();
  });
});

describe("copyBlob with a source longer than the size", () => {
  it("stops at the first chunk past the size, storing nothing beyond it (an endless source ends too)", async () => {
    const store = new MemoryStore();
    const data = Buffer.from(randomBytes(1000));
    let pulled = 0;
    const endless = new Readable({
      read() {
        pulled++;
        this.push(pulled === 1 ? data : randomBytes(64 * 1024));
      },
    });
    const desc = { mediaType: MediaTypes.OciLayer, digest: digestOf(data), size: data.byteLength };
    await expect(writeBlob(store, ingestRef(desc), endless, desc)).rejects.toMatchObject({ code: "SizeMismatch" });
    expect(pulled).toBeLessThan(5);
    expect((await store.status(ingestRef(desc))).offset).toBe(1000);
    // The 1000 bytes it kept are the blob: a retry commits without reading anything.
    await writeBlob(store, ingestRef(desc), Readable.from([]), desc);
    expect(Buffer.from(await readBlob(store, desc)).equals(data)).toBe(true);
  });
});

describe("writeBlob", () => {
  it("writes, commits with labels and leaves no ingest", async () => {
    const store = new MemoryStore();
    const b = blob(10_000);
    const out = await writeBlob(store, ingestRef(b), Readable.from(chunks(b.data)), b, { labels: { a: "b" } });
    expect(out).toBe("written");
    expect(await store.info(b.digest)).toMatchObject({ size: b.size, labels: { a: "b" } });
    expect(await store.listStatuses()).toEqual([]);
  });

  it("skips content that already exists without reading the source", async () => {
    const store = new MemoryStore();
    const b = blob(1000);
    await writeBlob(store, "first", Readable.from(chunks(b.data)), b);
    const opened: number[] = [];
    const out = await writeBlob(store, "second", (offset) => {
      opened.push(offset);
      return Readable.from(chunks(b.data.subarray(offset)));
    }, b);
    expect(out).toBe("exists");
    expect(opened).toEqual([]);
    expect(await store.listStatuses()).toEqual([]);
  });

  it("resumes from the ingest offset with a seekable source", async () => {
    const store = new MemoryStore();
    const b = blob(50_000);
    await partial(store, "r", b, 20_001);
    const opened: number[] = [];
    const progress: number[] = [];
    const out = await writeBlob(
      store,
      "r",
      (offset) => {
        opened.push(offset);
        return Readable.from(chunks(b.data.subarray(offset)));
      },
      b,
      { onProgress: (o) => progress.push(o) },
    );
    expect(out).toBe("written");
    expect(opened).toEqual([20_001]);
    expect(progress[0]).toBeGreaterThan(20_001);
    expect(progress.at(-1)).toBe(b.size);
    expect((await stored(store, b.digest)).equals(b.data)).toBe(true);
  });

  it("resumes with a plain stream by discarding up to the offset", async () => {
    const store = new MemoryStore();
    const b = blob(50_000);
    await partial(store, "r", b, 33_333);
    const progress: number[] = [];
    await writeBlob(store, "r", Readable.from(chunks(b.data, 4096)), b, { onProgress: (o) => progress.push(o) });
    // Only the bytes after the offset were written.
    expect(progress[0]).toBeGreaterThan(33_333);
    expect(progress[0]).toBeLessThanOrEqual(33_333 + 4096);
    expect((await stored(store, b.digest)).equals(b.data)).toBe(true);
  });

  it("resumes from a ReaderAt source", async () => {
    const store = new MemoryStore();
    const b = blob(40_000);
    const src = new MemoryStore();
    await writeBlob(src, "x", Readable.from(chunks(b.data)), b);
    await partial(store, "r", b, 100);
    await writeBlob(store, "r", await src.readerAt(b), b);
    expect((await stored(store, b.digest)).equals(b.data)).toBe(true);
  });

  it("starts over when the source ignores the offset", async () => {
    const store = new MemoryStore();
    const b = blob(10_000);
    await partial(store, "r", b, 5000);
    const progress: number[] = [];
    await writeBlob(
      store,
      "r",
      () => Object.assign(Readable.from(chunks(b.data)), { rangeIgnored: true }),
      b,
      { onProgress: (o) => progress.push(o) },
    );
    expect(progress[0]).toBe(1000);
    expect((await stored(store, b.digest)).equals(b.data)).toBe(true);
  });

  it("fails with DigestMismatch on wrong bytes and keeps the ingest", async () => {
    const store = new MemoryStore();
    const b = blob(3000);
    const wrong = blob(3000);
    expect(await codeOf(writeBlob(store, "r", Readable.from(chunks(wrong.data)), b))).toBe("DigestMismatch");
    expect(await codeOf(store.info(b.digest))).toBe("NotFound");
    expect((await store.status("r")).offset).toBe(3000);
  });

  it("fails with SizeMismatch when the source ends early, keeping what arrived", async () => {
    const store = new MemoryStore();
    const b = blob(3000);
    expect(await codeOf(writeBlob(store, "r", Readable.from(chunks(b.data.subarray(0, 2000))), b))).toBe("SizeMismatch");
    expect((await store.status("r")).offset).toBe(2000);
    // A later attempt resumes and completes.
    await writeBlob(store, "r", (o) => Readable.from(chunks(b.data.subarray(o))), b);
    expect((await stored(store, b.digest)).equals(b.data)).toBe(true);
  });

  it("waits for a held ref, then resumes the holder's bytes", async () => {
    const store = new MemoryStore();
    const b = blob(8000);
    const holder = await store.writer({ ref: "r", total: b.size, expected: b.digest });
    await holder.write(b.data.subarray(0, 3000));
    const opened: number[] = [];
    const pending = writeBlob(store, "r", (o) => {
      opened.push(o);
      return Readable.from(chunks(b.data.subarray(o)));
    }, b);
    setTimeout(() => void holder.close(), 50);
    expect(await pending).toBe("written");
    expect(opened).toEqual([3000]);
  });

  it("two writeBlobs of one blob under one ref: one writes, the other finds it", async () => {
    const store = new MemoryStore();
    const b = blob(100_000);
    const results = await Promise.all([
      writeBlob(store, ingestRef(b), Readable.from(chunks(b.data)), b),
      writeBlob(store, ingestRef(b), Readable.from(chunks(b.data)), b),
    ]);
    expect(results.sort()).toEqual(["exists", "written"]);
    expect(await store.listStatuses()).toEqual([]);
  });

  it("under different refs, the loser of the commit race reports exists and drops its ingest", async () => {
    const store = new MemoryStore();
    const b = blob(100_000);
    const results = await Promise.all([
      writeBlob(store, "one", Readable.from(chunks(b.data)), b),
      writeBlob(store, "two", Readable.from(chunks(b.data)), b),
    ]);
    expect(results.sort()).toEqual(["exists", "written"]);
    expect(await store.listStatuses()).toEqual([]);
  });

  it("aborts mid-stream with Aborted, keeping the ingest unlocked for a resume", async () => {
    const store = new MemoryStore();
    const b = blob(20_000);
    const ac = new AbortController();
    async function* slow(): AsyncGenerator<Uint8Array> {
      for (const c of chunks(b.data)) {
        yield c;
        if (c.byteOffset >= 5000) ac.abort();
        await new Promise((r) => setTimeout(r, 1));
      }
    }
    expect(await codeOf(writeBlob(store, "r", slow(), b, { signal: ac.signal }))).toBe("Aborted");
    const s = await store.status("r");
    expect(s.offset).toBeGreaterThan(0);
    expect(s.offset).toBeLessThan(b.size);
    const w = await store.writer({ ref: "r" });
    await w.close();
  });
});

describe("copyBlob", () => {
  it("restarts an ingest holding more bytes than the blob has", async () => {
    const store = new MemoryStore();
    const b = blob(1000);
    const w = await store.writer({ ref: "r" });
    await w.write(new Uint8Array(1500));
    expect(await copyBlob(w, (o) => Readable.from(chunks(b.data.subarray(o))), { size: b.size, expected: b.digest })).toBe("written");
    expect((await stored(store, b.digest)).equals(b.data)).toBe(true);
  });

  it("commits a complete ingest without opening the source", async () => {
    const store = new MemoryStore();
    const b = blob(2000);
    await partial(store, "r", b, b.size);
    const w = await store.writer({ ref: "r" });
    const refuse = (): never => {
      throw new Error("source must not be opened");
    };
    expect(await copyBlob(w, refuse, { size: b.size, expected: b.digest })).toBe("written");
    expect((await stored(store, b.digest)).equals(b.data)).toBe(true);
  });

  it("closes the writer even when the source fails", async () => {
    const store = new MemoryStore();
    const w = await store.writer({ ref: "r" });
    async function* broken(): AsyncGenerator<Uint8Array> {
      yield new Uint8Array(10);
      throw new Error("source broke");
    }
    await expect(copyBlob(w, broken(), { size: 100 })).rejects.toThrow("source broke");
    const again = await store.writer({ ref: "r" });
    expect((await again.status()).offset).toBe(10);
    await again.close();
  });
});

describe("copyBlob abort", () => {
  it("aborts a copy stalled waiting for the source and releases the writer", async () => {
    const store = new MemoryStore();
    const w = await store.writer({ ref: "stall" });
    let pulled = false;
    const stalled = new Readable({
      read() {
        if (pulled) return; // never delivers more: a hung connection
        pulled = true;
        this.push(Buffer.alloc(10));
      },
    });
    const ac = new AbortController();
    const copying = copyBlob(w, stalled, { size: 100, signal: ac.signal, onProgress: () => void setTimeout(() => ac.abort(), 20) });
    expect(await codeOf(copying)).toBe("Aborted");
    expect(stalled.destroyed).toBe(true);
    const again = await store.writer({ ref: "stall" });
    expect((await again.status()).offset).toBe(10);
    await again.close();
  });
});

describe("readBlob", () => {
  it("reads a small document", async () => {
    const store = new MemoryStore();
    const doc = new TextEncoder().encode(JSON.stringify({ schemaVersion: 2 }));
    const desc = { digest: digestOf(doc), size: doc.byteLength };
    await writeBlob(store, "doc", Readable.from([doc]), desc);
    expect(Buffer.from(await readBlob(store, desc)).equals(Buffer.from(doc))).toBe(true);
  });

  it("refuses blobs over the cap with InvalidArgument", async () => {
    const store = new MemoryStore();
    const b = blob(2000);
    await writeBlob(store, "b", Readable.from(chunks(b.data)), b);
    expect(await codeOf(readBlob(store, b, { maxSize: 1999 }))).toBe("InvalidArgument");
    expect((await readBlob(store, b, { maxSize: 2000 })).byteLength).toBe(2000);
    expect(DefaultReadBlobMaxSize).toBe(4 * 1024 * 1024);
    // The default cap applies to the descriptor before anything is read.
    expect(await codeOf(readBlob(store, { digest: b.digest, size: DefaultReadBlobMaxSize + 1 }))).toBe("InvalidArgument");
  });

  it("reports NotFound and size disagreements", async () => {
    const store = new MemoryStore();
    const b = blob(100);
    expect(await codeOf(readBlob(store, b))).toBe("NotFound");
    await writeBlob(store, "b", Readable.from([b.data]), b);
    expect(await codeOf(readBlob(store, { digest: b.digest, size: 99 }))).toBe("SizeMismatch");
  });
});
