import { describe, expect, it } from "vitest";
import { Readable } from "node:stream";
import { createDigester, digestOf, digestStream, parseDigest, splitDigest } from "./digest.ts";
import { FerryError } from "./errors.ts";

const EMPTY = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

describe("digest", () => {
  it("computes sha256 of bytes, incrementally and from a stream", async () => {
    expect(digestOf(new Uint8Array())).toBe(EMPTY);
    const d = createDigester();
    d.update(Buffer.from("hello "));
    expect(d.digest()).toBe(digestOf("hello "));
    d.update(Buffer.from("world"));
    expect(d.digest()).toBe(digestOf("hello world"));
    const r = await digestStream(Readable.from([Buffer.from("hello "), Buffer.from("world")]));
    expect(r).toEqual({ digest: digestOf("hello world"), size: 11 });
  });

  it.each([
    ["no algorithm", "e3b0c442"],
    ["unknown algorithm", "md5:d41d8cd98f00b204e9800998ecf8427e"],
    ["uppercase hex", EMPTY.toUpperCase().replace("SHA256", "sha256")],
    ["short hex", "sha256:abc"],
    ["path traversal", "sha256:../../x"],
    ["sha512 with sha256 length", `sha512:${EMPTY.slice(7)}`],
  ])("rejects %s with InvalidDigest", (_name, value) => {
    try {
      parseDigest(value);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(FerryError);
      expect((err as FerryError).code).toBe("InvalidDigest");
    }
  });

  it("splits a valid digest", () => {
    expect(splitDigest(EMPTY)).toEqual({ algorithm: "sha256", encoded: EMPTY.slice(7) });
    const s512 = digestOf("x", "sha512");
    expect(parseDigest(s512)).toBe(s512);
  });
});
