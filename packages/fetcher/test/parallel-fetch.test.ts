/**
 * `RegistryFetcher.fetch` with parallel ranges (`parallelRangeThreshold`): one ordered stream made
 * of several ranged GETs, which is how core's `pull` and `copy` get the setting.
 */
import { describe, expect, it } from "vitest";
import { digestOf, MediaTypes, type Descriptor } from "@ferry/core";
import { createRegistryResolver, type RegistryFetcher } from "../src/index.ts";
import { rangeHandler, stubsPerTest } from "./stub-server.ts";

const stub = stubsPerTest();
const fast = { retry: { minDelayMs: 1, maxDelayMs: 5 } };
const parallel = { ...fast, parallelRangeThreshold: 0, rangeChunkSize: 64 * 1024, parallelRanges: 3 };

function pattern(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i + 4 <= n; i += 4) b.writeUInt32LE(i, i);
  return b;
}
const big = pattern(1024 * 1024 + 123);
const desc: Descriptor = { mediaType: MediaTypes.OciLayer, digest: digestOf(big), size: big.byteLength };

async function collect(s: AsyncIterable<unknown>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** A stub serving `data` under any blob path, recording the Range header of every GET. */
async function server(data: Buffer, opts: { ignoreRange?: boolean } = {}) {
  const ranges: Array<string | undefined> = [];
  const serve = rangeHandler(data);
  const reg = await stub((req, res) => {
    ranges.push(req.headers.range);
    if (opts.ignoreRange) return void res.writeHead(200, { "content-length": data.byteLength }).end(data);
    serve(req, res);
  });
  return { reg, ranges };
}

describe("RegistryFetcher.fetch with parallel ranges", () => {
  it("streams the blob in order from several ranged GETs, from 0 and from an offset", async () => {
    const { reg, ranges } = await server(big);
    const r = createRegistryResolver(parallel);
    try {
      const f = (await r.fetcher(`${reg.host}/r`)) as RegistryFetcher;
      expect((await collect(await f.fetch(desc))).equals(big)).toBe(true);
      expect(ranges.length).toBe(Math.ceil(big.byteLength / (64 * 1024)));
      expect(ranges).toContain(`bytes=${64 * 1024}-${2 * 64 * 1024 - 1}`);
      ranges.length = 0;
      const tail = await collect(await f.fetch(desc, { offset: 100_000 }));
      expect(tail.equals(big.subarray(100_000))).toBe(true);
      expect(ranges[0]).toBe(`bytes=100000-${100_000 + 64 * 1024 - 1}`);
    } finally {
      await r.close();
    }
  });

  it("falls back to one plain GET when the server ignores Range", async () => {
    const { reg, ranges } = await server(big, { ignoreRange: true });
    const r = createRegistryResolver(parallel);
    try {
      const f = (await r.fetcher(`${reg.host}/r`)) as RegistryFetcher;
      const s = await f.fetch(desc);
      expect((await collect(s)).equals(big)).toBe(true);
      // At most the ranges already in flight (answered whole, dropped), then one plain GET.
      expect(ranges.length).toBeLessThanOrEqual(parallel.parallelRanges + 1);
      expect(ranges[ranges.length - 1] ?? `bytes=0-${big.byteLength - 1}`).toBe(`bytes=0-${big.byteLength - 1}`);
      const fromOffset = await f.fetch(desc, { offset: 5000 });
      expect(fromOffset.rangeIgnored).toBe(true);
    } finally {
      await r.close();
    }
  });

  it("fails the stream with DigestMismatch when the bytes are not the descriptor's", async () => {
    const wrong = Buffer.from(big);
    wrong.writeUInt8(wrong.readUInt8(700_000) ^ 0xff, 700_000);
    const { reg } = await server(wrong);
    const r = createRegistryResolver(parallel);
    try {
      const f = (await r.fetcher(`${reg.host}/r`)) as RegistryFetcher;
      await expect(collect(await f.fetch(desc))).rejects.toMatchObject({ code: "DigestMismatch" });
    } finally {
      await r.close();
    }
  });

  it("is off below the threshold and with parallel: false", async () => {
    const { reg, ranges } = await server(big);
    const r = createRegistryResolver({ ...parallel, parallelRangeThreshold: big.byteLength + 1 });
    try {
      const f = (await r.fetcher(`${reg.host}/r`)) as RegistryFetcher;
      expect((await collect(await f.fetch(desc))).equals(big)).toBe(true);
      expect(ranges.length).toBe(1);
    } finally {
      await r.close();
    }
    const r2 = createRegistryResolver(parallel);
    try {
      ranges.length = 0;
      const f = (await r2.fetcher(`${reg.host}/r`)) as RegistryFetcher;
      expect((await collect(await f.fetch(desc, { parallel: false }))).equals(big)).toBe(true);
      expect(ranges.length).toBe(1);
    } finally {
      await r2.close();
    }
  });

  it("an abort ends the stream with Aborted", async () => {
    const { reg } = await server(big);
    const r = createRegistryResolver(parallel);
    try {
      const f = (await r.fetcher(`${reg.host}/r`)) as RegistryFetcher;
      const ac = new AbortController();
      const s = await f.fetch(desc, { signal: ac.signal });
      let got = 0;
      const run = (async () => {
        for await (const c of s) {
          got += (c as Buffer).byteLength;
          if (got >= 128 * 1024) ac.abort();
        }
      })();
      await expect(run).rejects.toMatchObject({ code: "Aborted" });
    } finally {
      await r.close();
    }
  });
});

describe("a parallel fetch stream destroyed", () => {
  it.each(["before its first read", "while it waits on a slow range"])("%s gives the host's slots back at once", async (when) => {
    const C = 64 * 1024;
    const data = pattern(C * 6);
    const d: Descriptor = { mediaType: MediaTypes.OciLayer, digest: digestOf(data), size: data.byteLength };
    const small = pattern(100);
    const smallDesc: Descriptor = { mediaType: MediaTypes.OciLayer, digest: digestOf(small), size: small.byteLength };
    const reg = await stub(async (req, res) => {
      if (req.url?.includes(smallDesc.digest)) return void res.writeHead(200, { "content-length": 100 }).end(small);
      const m = /bytes=(\d+)-(\d+)/.exec(req.headers.range ?? "");
      const s = Number(m?.[1] ?? 0);
      const e = Number(m?.[2] ?? data.length - 1);
      res.writeHead(206, { "content-length": e - s + 1, "content-range": `bytes ${s}-${e}/${data.length}` });
      if (s === 0) return void res.end(data.subarray(s, e + 1));
      // The other ranges trickle: 1 KiB every 150 ms, ~10 s each.
      for (let p = s; p <= e && !res.destroyed; p += 1024) {
        res.write(data.subarray(p, Math.min(e + 1, p + 1024)));
        await new Promise((r) => setTimeout(r, 150));
      }
      res.end();
    });
    const r = createRegistryResolver({ ...parallel, concurrencyPerHost: 2 });
    try {
      const f = await r.fetcher(`${reg.host}/x`);
      const stream = await f.fetch(d);
      stream.on("error", () => {});
      if (when !== "before its first read") {
        let got = 0;
        await new Promise<void>((res) =>
          stream.on("data", (c: Buffer) => {
            got += c.byteLength;
            if (got >= C) {
              stream.pause();
              res();
            }
          }),
        );
      }
      stream.destroy();
      // Both slots of the host were held by the trickling ranges until they ended (~10 s).
      const next = (f as RegistryFetcher).fetch(smallDesc, { parallel: false }).then(collect);
      const late = new Promise<"held">((res) => setTimeout(() => res("held"), 3000).unref());
      expect(await Promise.race([next.then((b) => b.byteLength), late])).toBe(100);
    } finally {
      await r.close();
    }
  });
});
