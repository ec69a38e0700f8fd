import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import type { ReaderAt } from "../content.ts";
import type { Descriptor } from "../descriptor.ts";
import { digestOf } from "../digest.ts";
import type { StatusEvent } from "../status/events.ts";
import { StatusReporter } from "../status/reporter.ts";
import type { Fetcher, PushSource } from "../transport.ts";
import { LENT_CHUNK, withLentChunks } from "./push-chunks.ts";

/** An in-memory ReaderAt; `readInto` is dropped when `into` is false; records closes and reads in flight. */
function memoryReader(bytes: Buffer, into = true, size = bytes.byteLength) {
  const state = { closed: false, inFlight: 0, readsAfterClose: 0, reads: 0 };
  const ra: ReaderAt = {
    size,
    async read(offset, length) {
      return bytes.subarray(offset, offset + length);
    },
    createReadStream(o = {}) {
      return Readable.from([Buffer.from(bytes.subarray(o.offset ?? 0, o.end ?? bytes.byteLength))]);
    },
    async close() {
      state.closed = true;
    },
  };
  if (into) {
    ra.readInto = async (buffer, offset) => {
      if (state.closed) state.readsAfterClose++;
      state.reads++;
      state.inFlight++;
      await new Promise((r) => setImmediate(r));
      state.inFlight--;
      // Short reads on purpose: the source must fill each chunk anyway.
      const n = Math.max(0, Math.min(buffer.byteLength, bytes.byteLength - offset, 300 * 1024));
      buffer.set(bytes.subarray(offset, offset + n));
      return n;
    };
  }
  return { ra, state };
}

function setup(bytes: Buffer, reader: ReaderAt) {
  const desc: Descriptor = { mediaType: "application/vnd.oci.image.layer.v1.tar", digest: digestOf(bytes), size: bytes.byteLength };
  const reporter = new StatusReporter({ throttleMs: 0 });
  const events: StatusEvent[] = [];
  reporter.status$.subscribe({ next: (e) => events.push(e), error: () => undefined });
  const blob = reporter.blob(desc, "upload");
  const fetcher: Fetcher = {
    fetch: async () => {
      throw new Error("not used");
    },
    readerAt: async () => reader,
  };
  const base: PushSource = { open: () => Readable.from([bytes]) };
  return { desc, events, blob, source: withLentChunks(base, fetcher, desc, blob, new AbortController().signal) };
}

describe("lent push chunks", () => {
  it("yield every byte in full chunks, reusing two buffers in turn, and report the bytes", async () => {
    const bytes = randomBytes(3 * LENT_CHUNK + 1234);
    const { ra, state } = memoryReader(bytes);
    const { source, blob, events } = setup(bytes, ra);
    const copies: Buffer[] = [];
    const memory: ArrayBufferLike[] = [];
    for await (const chunk of source.chunks!(0)) {
      copies.push(Buffer.from(chunk)); // a consumer must be done with a chunk before the next
      memory.push(chunk.buffer);
    }
    expect(Buffer.concat(copies).equals(bytes)).toBe(true);
    expect(copies.map((c) => c.byteLength)).toEqual([LENT_CHUNK, LENT_CHUNK, LENT_CHUNK, 1234]);
    expect(memory[2]).toBe(memory[0]);
    expect(memory[3]).toBe(memory[1]);
    expect(memory[1]).not.toBe(memory[0]);
    expect(blob.transferred).toBe(bytes.byteLength);
    expect(events.map((e) => e.type)).toContain("committing");
    expect(state.closed).toBe(true);
  });

  it("never refills a buffer the consumer still holds", async () => {
    const bytes = randomBytes(4 * LENT_CHUNK);
    const { ra } = memoryReader(bytes);
    const { source } = setup(bytes, ra);
    let held: { chunk: Uint8Array; copy: Buffer } | undefined;
    for await (const chunk of source.chunks!(0)) {
      // The previous chunk must be intact until this one was asked for (the prefetch went elsewhere).
      if (held) expect(Buffer.from(held.chunk).equals(held.copy)).toBe(true);
      held = { chunk, copy: Buffer.from(chunk) };
      await new Promise((r) => setTimeout(r, 5)); // a slow consumer: the prefetch completes meanwhile
      expect(Buffer.from(chunk).equals(held.copy)).toBe(true);
    }
  });

  it("start at an offset and report it as resumed", async () => {
    const bytes = randomBytes(LENT_CHUNK + 10);
    const { source, events } = setup(bytes, memoryReader(bytes).ra);
    const out: Buffer[] = [];
    for await (const c of source.chunks!(1000)) out.push(Buffer.from(c));
    expect(Buffer.concat(out).equals(bytes.subarray(1000))).toBe(true);
    expect(events.find((e) => e.type === "resumed")).toMatchObject({ offset: 1000 });
  });

  it("close the reader after the read in flight when the consumer stops early", async () => {
    const bytes = randomBytes(3 * LENT_CHUNK);
    const { ra, state } = memoryReader(bytes);
    const { source } = setup(bytes, ra);
    for await (const _ of source.chunks!(0)) break;
    expect(state.closed).toBe(true);
    expect(state.inFlight).toBe(0);
    expect(state.readsAfterClose).toBe(0);
  });

  it("refuse a stored blob whose size is not the descriptor's", async () => {
    const bytes = randomBytes(1000);
    const { ra, state } = memoryReader(bytes, true, 999);
    const { source } = setup(bytes, ra);
    await expect((async () => {
      for await (const _ of source.chunks!(0)) { /* drain */ }
    })()).rejects.toMatchObject({ code: "SizeMismatch" });
    expect(state.closed).toBe(true);
  });

  it("fail when the file ends before its size", async () => {
    const bytes = randomBytes(LENT_CHUNK + 5);
    const { ra } = memoryReader(bytes.subarray(0, LENT_CHUNK), true, bytes.byteLength);
    const { source } = setup(bytes, ra);
    await expect((async () => {
      for await (const _ of source.chunks!(0)) { /* drain */ }
    })()).rejects.toMatchObject({ code: "SizeMismatch" });
  });

  it("stream a reader without readInto", async () => {
    const bytes = randomBytes(5000);
    const { source } = setup(bytes, memoryReader(bytes, false).ra);
    const out: Buffer[] = [];
    for await (const c of source.chunks!(0)) out.push(Buffer.from(c));
    expect(Buffer.concat(out).equals(bytes)).toBe(true);
  });

  it("leave a source without random access as it is", () => {
    const base: PushSource = { open: () => Readable.from([]) };
    const reporter = new StatusReporter({ throttleMs: 0 });
    const desc: Descriptor = { mediaType: "application/octet-stream", digest: digestOf(Buffer.alloc(0)), size: 0 };
    const fetcher: Fetcher = { fetch: async () => Readable.from([]) };
    expect(withLentChunks(base, fetcher, desc, reporter.blob(desc, "upload"), new AbortController().signal)).toBe(base);
  });
});
