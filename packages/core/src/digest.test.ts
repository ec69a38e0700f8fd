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

  it("computes sha512 of bytes and streams (known vectors)", async () => {
    const empty512 =
      "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e";
    expect(digestOf(new Uint8Array(), "sha512")).toBe(empty512);
    const abc512 =
      "sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f";
    expect(digestOf("abc", "sha512")).toBe(abc512);
    expect(await digestStream(Readable.from([Buffer.from("a"), Buffer.from("bc")]), "sha512")).toEqual({ digest: abc512, size: 3 });
    const d = createDigester("sha512");
    d.update(Buffer.from("abc"));
    expect(d.digest()).toBe(abc512);
    expect(parseDigest(abc512)).toBe(abc512);
  });

  it.each([["empty hex", "sha256:"], ["trailing newline", `${EMPTY}\n`], ["leading space", ` ${EMPTY}`], ["not a string", 42]])(
    "also rejects %s",
    (_name, value) => {
      expect(() => parseDigest(value)).toThrow(expect.objectContaining({ code: "InvalidDigest" }));
    },
  );

  it("splits a valid digest", () => {
    expect(splitDigest(EMPTY)).toEqual({ algorithm: "sha256", encoded: EMPTY.slice(7) });
    const s512 = digestOf("x", "sha512");
    expect(parseDigest(s512)).toBe(s512);
  });
});
