/** Retries of a pusher's existence checks reach the caller's `onRetry` (and so the status stream). */
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { digestOf, MediaTypes, type Descriptor, type RetryInfo } from "@ferry/core";
import { createRegistryResolver } from "../src/index.ts";
import { stubsPerTest } from "./stub-server.ts";

const stub = stubsPerTest();
const fast = { retry: { minDelayMs: 1, maxDelayMs: 5 } };
const blob = Buffer.from("a blob the registry already has");
const desc: Descriptor = { mediaType: MediaTypes.OciLayer, digest: digestOf(blob), size: blob.byteLength };

/** HEAD answers 503 `failures` times, then 200; anything else is unexpected (500). */
async function flakyHead(failures: number) {
  const heads: number[] = [];
  const reg = await stub((req, res) => {
    if (req.method === "HEAD") {
      heads.push(Date.now());
      if (heads.length <= failures) return void res.writeHead(503).end();
      return void res.writeHead(200, { "content-length": blob.byteLength, "docker-content-digest": desc.digest }).end();
    }
    res.writeHead(500).end();
  });
  return { reg, heads };
}

describe("Pusher.exists retries", () => {
  it("exists() reports each retry through onRetry", async () => {
    const { reg, heads } = await flakyHead(2);
    const r = createRegistryResolver(fast);
    try {
      const p = await r.pusher(`${reg.host}/repo`);
      const retries: RetryInfo[] = [];
      expect(await p.exists(desc, { onRetry: (i) => retries.push(i) })).toBe(true);
      expect(heads.length).toBe(3);
      expect(retries.map((i) => i.status)).toEqual([503, 503]);
    } finally {
      await r.close();
    }
  });

  it("push() reports the retries of its own existence check", async () => {
    const { reg } = await flakyHead(1);
    const r = createRegistryResolver(fast);
    try {
      const p = await r.pusher(`${reg.host}/repo`);
      const retries: RetryInfo[] = [];
      const outcome = await p.push(desc, { open: () => Readable.from([blob]) }, { onRetry: (i) => retries.push(i) });
      expect(outcome).toBe("exists");
      expect(retries).toHaveLength(1);
      expect(retries[0]!.status).toBe(503);
    } finally {
      await r.close();
    }
  });
});
