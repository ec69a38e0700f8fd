/** ChunkedDecoder: chunked bodies decoded exactly however the bytes are split, and bad framing refused. */
import { describe, expect, it } from "vitest";
import { ChunkedDecoder } from "../src/chunked-decoder.ts";

const WIRE = "4\r\nWiki\r\n7;name=value\r\npedia i\r\nB\r\nn \r\nchunks.\r\n0\r\nExpires: never\r\n\r\n";

/** Feed `wire` in pieces split at `cuts`; the decoded text and the bytes the body used. */
function decode(wire: string, cuts: number[] = []): { text: string; used: number; done: boolean } {
  const d = new ChunkedDecoder();
  const buf = Buffer.from(wire, "latin1");
  const bounds = [0, ...cuts, buf.byteLength];
  let text = "";
  let used = 0;
  for (let k = 0; k + 1 < bounds.length; k++) {
    const piece = buf.subarray(bounds[k], bounds[k + 1]);
    used += d.feed(piece, (data) => (text += data.toString("latin1")));
  }
  return { text, used, done: d.done };
}

describe("ChunkedDecoder", () => {
  it("decodes a body with extensions and trailers, split at every possible point", () => {
    for (let cut = 0; cut <= WIRE.length; cut++) {
      expect(decode(WIRE, [cut])).toEqual({ text: "Wikipedia in \r\nchunks.", used: WIRE.length, done: true });
    }
    // One byte at a time.
    expect(decode(WIRE, Array.from({ length: WIRE.length - 1 }, (_, i) => i + 1)).text).toBe("Wikipedia in \r\nchunks.");
  });

  it("stops at the end of the body: bytes after it (the next answer) are not used", () => {
    const r = decode(`${WIRE}HTTP/1.1 200 OK\r\n`);
    expect(r).toEqual({ text: "Wikipedia in \r\nchunks.", used: WIRE.length, done: true });
  });

  it("is not done before the final empty line", () => {
    expect(decode("3\r\nabc\r\n0\r\n").done).toBe(false);
  });

  it.each([
    ["a size that is not hex", "zz\r\nabc\r\n0\r\n\r\n", /bad chunk size/],
    ["data longer than its size", "3\r\nabcdef\r\n0\r\n\r\n", /longer than its chunk size/],
    ["a bare LF", "3\nabc\r\n0\r\n\r\n", /bare LF/],
    ["a huge size line", `${"1".repeat(5000)}\r\n`, /too long|bad chunk size/],
    ["a size over 12 hex digits", "1000000000000\r\n", /bad chunk size/],
  ])("refuses %s", (_, wire, message) => {
    expect(() => decode(wire)).toThrow(message);
  });
});
