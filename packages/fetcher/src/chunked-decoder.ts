/**
 * Incremental decoder of an HTTP/1.1 chunked body (RFC 9112 §7.1): feed it the bytes after the
 * head as they arrive; it hands out the data (slices of the input, no copy) and says where the
 * body ended, so the connection can carry the next answer. Chunk extensions and trailer fields
 * are read and dropped. Malformed framing is an error: the connection cannot be trusted after it.
 */

/** Longest chunk-size line or trailer line accepted (extensions included). */
const MAX_LINE = 4096;
/** Most trailer bytes accepted. */
const MAX_TRAILERS = 64 * 1024;

export class ChunkedDecoder {
  #state: "size" | "data" | "data-end" | "trailer" | "done" = "size";
  #line = "";
  #left = 0;
  #trailerBytes = 0;

  get done(): boolean {
    return this.#state === "done";
  }

  /**
   * Decode from `input`: `onData` gets each piece of body data. Returns how many bytes of
   * `input` belonged to the body (all of them unless it ended inside); throws on bad framing.
   */
  feed(input: Buffer, onData: (data: Buffer) => void): number {
    let i = 0;
    while (i < input.byteLength && this.#state !== "done") {
      if (this.#state === "data") {
        const n = Math.min(this.#left, input.byteLength - i);
        onData(input.subarray(i, i + n));
        i += n;
        this.#left -= n;
        if (this.#left === 0) this.#state = "data-end";
        continue;
      }
      // A line: chunk size, the CRLF after data, or a trailer field.
      const lf = input.indexOf(10, i);
      const end = lf < 0 ? input.byteLength : lf + 1;
      this.#line += input.toString("latin1", i, end);
      if (this.#state === "trailer") this.#trailerBytes += end - i;
      i = end;
      if (this.#line.length > MAX_LINE || this.#trailerBytes > MAX_TRAILERS) throw new Error("chunked body: line too long");
      if (lf < 0) continue;
      const line = this.#line;
      this.#line = "";
      if (!line.endsWith("\r\n")) throw new Error("chunked body: bare LF");
      const text = line.slice(0, -2);
      if (this.#state === "data-end") {
        if (text !== "") throw new Error("chunked body: data longer than its chunk size");
        this.#state = "size";
      } else if (this.#state === "size") {
        const m = /^([0-9a-fA-F]{1,12})[ \t]*(;.*)?$/.exec(text);
        if (!m) throw new Error(`chunked body: bad chunk size ${JSON.stringify(text.slice(0, 40))}`);
        const size = Number.parseInt(m[1] as string, 16);
        if (size === 0) this.#state = "trailer";
        else {
          this.#left = size;
          this.#state = "data";
        }
      } else if (text === "") {
        this.#state = "done"; // the empty line after the trailers
      }
    }
    return i;
  }
}
