/** HTTP/1.1 heads on ferry's own connections: the GET head written, and response heads read back. */
import { describe, expect, it } from "vitest";
import { getRequestHead, HeadReader, MAX_HEAD_BYTES, MAX_INFORMATIONAL_HEADS } from "../src/http1-head.ts";

const URL_ = new URL("http://127.0.0.1:5000/v2/r/blobs/sha256:aa?x=1");

describe("getRequestHead", () => {
  it("writes the request line, the given headers, then host and connection", () => {
    expect(getRequestHead(URL_, { "user-agent": "ferry", range: "bytes=0-9" }, "keep-alive")).toBe(
      "GET /v2/r/blobs/sha256:aa?x=1 HTTP/1.1\r\nuser-agent: ferry\r\nrange: bytes=0-9\r\nhost: 127.0.0.1:5000\r\nconnection: keep-alive\r\n\r\n",
    );
  });

  it.each([
    ["a CR LF in a value", { "x-a": "1\r\nInjected: 2" }],
    ["a NUL in a value", { "x-a": "1\u0000" }],
    ["a space in a name", { "x a": "1" }],
  ])("refuses %s (InvalidArgument)", (_, headers) => {
    expect(() => getRequestHead(URL_, headers, "close")).toThrow(expect.objectContaining({ code: "InvalidArgument" }));
  });
});

describe("HeadReader", () => {
  const text = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Multi: a\r\nX-Multi: b\r\n\r\nhello";

  it("returns the head and the bytes after it, however the bytes are split", () => {
    for (let cut = 1; cut < text.length; cut++) {
      const r = new HeadReader();
      const first = r.push(Buffer.from(text.slice(0, cut)));
      const got = first ?? r.push(Buffer.from(text.slice(cut)));
      expect(got?.head?.status).toBe(200);
      expect(got?.head?.headers.get("x-multi")).toEqual(["a", "b"]);
      // Whatever the cut, the body bytes that came with the head are handed back.
      const rest = first ? text.slice(text.indexOf("\r\n\r\n") + 4, cut) : "hello";
      expect(got?.rest.toString()).toBe(rest);
    }
  });

  it("finds the head when it comes one byte per read (the blank line split every way)", () => {
    const r = new HeadReader();
    let got: ReturnType<HeadReader["push"]>;
    const bytes = Buffer.from(text);
    let i = 0;
    while (got === undefined) got = r.push(bytes.subarray(i, ++i));
    expect(i).toBe(text.indexOf("\r\n\r\n") + 4);
    expect(got.head?.headers.get("content-length")).toEqual(["5"]);
    expect(got.rest.byteLength).toBe(0);
  });

  it(`refuses more than ${MAX_INFORMATIONAL_HEADS} informational answers`, () => {
    const r = new HeadReader();
    const early = Buffer.from("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n");
    for (let i = 0; i < MAX_INFORMATIONAL_HEADS; i++) expect(r.push(early)).toBeUndefined();
    expect(() => r.push(early)).toThrow(/informational/);
  });

  it("skips informational answers, also when the real head comes in a later read", () => {
    const r = new HeadReader();
    expect(r.push(Buffer.from("HTTP/1.1 100 Continue\r\n\r\n"))).toBeUndefined();
    const got = r.push(Buffer.from("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 404 Not Found\r\n\r\n"));
    expect(got?.head?.status).toBe(404);
    expect(got?.rest.byteLength).toBe(0);
  });

  it("hands back an unparseable head as undefined (the caller declines it)", () => {
    expect(new HeadReader().push(Buffer.from("HTTP/2 200\r\n\r\n"))).toEqual({ head: undefined, rest: Buffer.alloc(0) });
    expect(new HeadReader().push(Buffer.from("HTTP/1.1 200 OK\r\nno colon here\r\n\r\n"))?.head).toBeUndefined();
  });

  it("refuses a head over MAX_HEAD_BYTES, whether or not its end has come", () => {
    const big = `HTTP/1.1 200 OK\r\nX-Big: ${"a".repeat(MAX_HEAD_BYTES)}`;
    expect(() => new HeadReader().push(Buffer.from(big))).toThrow(/over/);
    expect(() => new HeadReader().push(Buffer.from(`${big}\r\n\r\n`))).toThrow(/over/);
  });
});
