import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import type { Descriptor } from "../descriptor.ts";
import { digestOf } from "../digest.ts";
import type { StatusEvent } from "../status/events.ts";
import { StatusReporter } from "../status/reporter.ts";
import type { Fetcher, FetchStream } from "../transport.ts";
import { fetchSource, memorySource } from "./metered-source.ts";

const bytes = Buffer.from("0123456789abcdefghij");
const desc: Descriptor = { mediaType: "application/vnd.oci.image.layer.v1.tar", digest: digestOf(bytes), size: bytes.byteLength };

function setup(upstream: () => FetchStream) {
  const reporter = new StatusReporter({ throttleMs: 0 });
  const events: StatusEvent[] = [];
  reporter.status$.subscribe({ next: (e) => events.push(e), error: () => undefined });
  const blob = reporter.blob(desc, "download");
  const fetcher: Fetcher = { fetch: async () => upstream() };
  return { reporter, events, blob, source: fetchSource(fetcher, desc, blob, new AbortController().signal) };
}

async function collect(s: Readable): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of s) out.push(c as Buffer);
  return Buffer.concat(out);
}

describe("metered sources", () => {
  it("pass every byte through, count it and report committing at the end", async () => {
    const { source, events, blob } = setup(() => Readable.from([bytes.subarray(0, 7), bytes.subarray(7)]));
    expect(await collect(await source.open(0))).toEqual(bytes);
    expect(blob.transferred).toBe(bytes.byteLength);
    expect(events.map((e) => e.type)).toContain("committing");
  });

  it("drop the leading bytes a server sent when it ignored the range, still counting them", async () => {
    const { source, blob } = setup(() => Object.assign(Readable.from([bytes.subarray(0, 4), bytes.subarray(4)]), { rangeIgnored: true }));
    expect(await collect(await source.open(6))).toEqual(bytes.subarray(6));
    expect(blob.transferred).toBe(bytes.byteLength);
  });

  it("fail with the upstream's error", async () => {
    const boom = new Error("boom");
    const { source } = setup(() => new Readable({ read() { this.destroy(boom); } }));
    await expect(collect(await source.open(0))).rejects.toBe(boom);
  });

  it("fail when the upstream closes without ending", async () => {
    const { source } = setup(() => new Readable({ read() { this.push(bytes.subarray(0, 3)); this.destroy(); } }));
    await expect(collect(await source.open(0))).rejects.toMatchObject({ code: "ERR_STREAM_PREMATURE_CLOSE" });
  });

  it("stop the upstream when the consumer stops reading", async () => {
    let upstream: Readable | undefined;
    const { source } = setup(() => (upstream = new Readable({ read() { this.push(bytes); } })));
    const s = await source.open(0);
    for await (const _ of s) break;
    expect(upstream?.destroyed).toBe(true);
  });

  it("hold back the upstream while the consumer does not read (backpressure)", async () => {
    let pulled = 0;
    const { source } = setup(() => new Readable({ highWaterMark: 1024, read() { pulled++; this.push(Buffer.alloc(1024)); } }));
    const s = await source.open(0);
    await new Promise((r) => setTimeout(r, 20));
    expect(pulled).toBeLessThan(200);
    s.destroy();
  });

  it("memorySource reads from an offset", async () => {
    const reporter = new StatusReporter({ throttleMs: 0 });
    const s = await memorySource(bytes, reporter.blob(desc, "download")).open(5);
    expect(await collect(s)).toEqual(bytes.subarray(5));
  });

  it("pass readInto through when the upstream has it, counting each fill, and never emit chunks too", async () => {
    let served = 0;
    const upstream = Object.assign(new Readable({ read() { this.push(bytes); this.push(null); } }), {
      async readInto(buf: Uint8Array): Promise<number> {
        const n = Math.min(buf.byteLength, bytes.byteLength - served);
        buf.set(bytes.subarray(served, served + n));
        served += n;
        return n;
      },
    });
    const { source, events, blob } = setup(() => upstream);
    const s = (await source.open(0)) as FetchStream;
    expect(typeof s.readInto).toBe("function");
    const buf = new Uint8Array(8);
    const got: number[] = [];
    for (let n = await s.readInto!(buf); n > 0; n = await s.readInto!(buf)) got.push(n);
    expect(got).toEqual([8, 8, 4]);
    expect(blob.transferred).toBe(bytes.byteLength);
    expect(events.map((e) => e.type)).toContain("committing");
    // The upstream's Readable side was never switched on (its chunks would count twice).
    expect(upstream.readableFlowing).not.toBe(true);
  });

  it("offer no readInto when leading bytes must be dropped (a range was ignored)", async () => {
    const upstream = Object.assign(Readable.from([bytes]), { rangeIgnored: true, readInto: async () => 0 });
    const { source } = setup(() => upstream);
    const s = (await source.open(5)) as FetchStream;
    expect(s.readInto).toBeUndefined();
    expect(await collect(s)).toEqual(bytes.subarray(5));
  });
});
