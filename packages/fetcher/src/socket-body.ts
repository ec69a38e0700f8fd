/**
 * A plain-HTTP/1.1 GET on a connection of its own whose body the kernel reads straight into
 * memory the consumer lends (`readInto`): no HTTP parser copy, no per-chunk Buffer, no staging
 * copy when the consumer lends its write batch (store-fs does). A success must be a 200 or 206
 * with a Content-Length and no transfer or content coding, and any chunked answer is declined
 * (`socketGet` resolves undefined: the caller asks again through undici); other answers
 * (redirects, challenges, 429s, errors) are handed back as they are, for the HTTP client to act on. Measured on 1 GiB blobs (issue 6):
 * the undici path spends ~0.4 CPU s/GiB copying, plus per-64-KiB-chunk stream costs.
 */
import { connect, type Socket } from "node:net";
import { Readable } from "node:stream";
import { abortError, NetworkError } from "@ferry/core";
import { getRequestHead, HeadReader, headTimeoutMs, type Head } from "./http1-head.ts";
import { redactUrl } from "./registry-error.ts";

export interface SocketGetRequest {
  url: URL;
  /** Header names in lower case; `host` and `connection` are set here. */
  headers: Record<string, string>;
  signal?: AbortSignal;
  /** Longest silence while bytes are awaited (the head, or a `readInto`), in ms. */
  stallTimeoutMs: number;
  /** The whole head must be in this long after the request. Default: {@link headTimeoutMs} of the stall timeout. */
  headTimeoutMs?: number;
}

export interface SocketResponse {
  status: number;
  header(name: string): string | undefined;
  headerAll(name: string): string[];
  body: SocketBody;
}

/** Reads that land outside a lent buffer (the head, the first read after a pause) go here. */
const SCRATCH_BYTES = 32 * 1024;
/** Chunk size when the body is read as a plain Readable. */
const READABLE_CHUNK = 256 * 1024;

/** True when `body` can fill lent buffers (a {@link SocketBody} not yet read as a stream). */
export function isSocketBody(body: unknown): body is SocketBody {
  return body instanceof SocketBody;
}

/**
 * Send `GET url` on a new connection. Resolves with the head and body of the answer, or
 * undefined (connection closed) for a chunked one or a success that is not plain bytes.
 */
export function socketGet(req: SocketGetRequest): Promise<SocketResponse | undefined> {
  return new Promise<SocketResponse | undefined>((resolve, reject) => {
    const body = new SocketBody(req, (head) => {
      if (head instanceof Error) return reject(head);
      if (head === undefined) return resolve(undefined);
      resolve({
        status: head.status,
        header: (name) => head.headers.get(name.toLowerCase())?.[0],
        headerAll: (name) => head.headers.get(name.toLowerCase()) ?? [],
        body,
      });
    });
  });
}

/**
 * The body of a {@link socketGet}. `readInto(buf)` resolves once `buf` is full or the body is
 * complete; the Readable side (used by whoever iterates it instead) reads into fresh buffers.
 */
export class SocketBody extends Readable {
  readonly #socket: Socket;
  readonly #url: URL;
  readonly #stallMs: number;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort: () => void;
  #onHead: ((head: Head | undefined | Error) => void) | undefined;
  readonly #headReader = new HeadReader();
  /** Body bytes read into scratch buffers, not yet handed out. */
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  /** Where reads land when no lent buffer has room (see #nextBuffer). */
  #scratch: Buffer | undefined;
  /** Body bytes still to come from the socket. */
  #remaining = 0;
  #declared = 0;
  /** The lent buffer being filled, how far, and who waits for it. */
  #target: Uint8Array | undefined;
  #filled = 0;
  #settle: ((n: number) => void) | undefined;
  #partial = false;
  /** The body runs to the connection's close (no Content-Length; error answers only). */
  #toEof = false;
  #fail: ((err: Error) => void) | undefined;
  /** Fails the request when the head is not complete in time (see HEAD_TIMEOUT_MS). */
  #headTimer: NodeJS.Timeout | undefined;

  constructor(req: SocketGetRequest, onHead: (head: Head | undefined | Error) => void) {
    super();
    this.#url = req.url;
    this.#stallMs = req.stallTimeoutMs;
    this.#signal = req.signal;
    this.#onHead = onHead;
    // Readers see failures through their reads (or the head promise); an 'error' event nobody
    // listens to (an abort before the head) must not become an uncaught exception.
    this.on("error", () => {});
    const url = req.url;
    const request = getRequestHead(url, req.headers, "close");
    this.#socket = connect({
      host: url.hostname.replace(/^\[(.*)\]$/, "$1"),
      port: Number(url.port || 80),
      noDelay: true,
      onread: { buffer: () => this.#nextBuffer(), callback: (n: number, buf: Uint8Array) => this.#onRead(n, buf) },
    });
    this.#socket.on("connect", () => this.#socket.write(request));
    this.#socket.on("error", (err) => this.#failAll(this.#networkError(err.message, err)));
    this.#socket.on("end", () => this.#onEnd());
    this.#socket.on("timeout", () => this.#failAll(this.#networkError(`no bytes for ${this.#stallMs} ms`)));
    this.#socket.setTimeout(this.#stallMs);
    this.#onAbort = () => this.#failAll(abortError(req.signal as AbortSignal));
    if (req.signal?.aborted) queueMicrotask(this.#onAbort);
    else req.signal?.addEventListener("abort", this.#onAbort, { once: true });
    const ms = req.headTimeoutMs ?? headTimeoutMs(this.#stallMs);
    this.#headTimer = setTimeout(() => this.#failAll(this.#networkError(`no complete response head within ${ms} ms`)), ms);
  }

  /** Body bytes not yet handed out (received or still to come). */
  get left(): number {
    return this.#remaining + this.#pendingBytes;
  }

  /**
   * Fill `buf` with the next body bytes. Resolves with the count: `buf.byteLength` unless the
   * body ends first, 0 only once every byte was handed out. Rejects if the connection fails
   * before the body is complete. One call at a time.
   */
  readInto(buf: Uint8Array): Promise<number> {
    return this.#read(buf, false);
  }

  /** `readInto`, or with `partial` resolving after the first socket read that brought bytes. */
  #read(buf: Uint8Array, partial: boolean): Promise<number> {
    if (this.destroyed) return Promise.reject(this.errored ?? this.#networkError("response body closed"));
    if (this.#settle !== undefined) return Promise.reject(new Error("SocketBody.readInto: a read is already pending"));
    let filled = 0;
    while (this.#pendingBytes > 0 && filled < buf.byteLength) {
      const head = this.#pending[0] as Buffer;
      const n = Math.min(head.byteLength, buf.byteLength - filled);
      buf.set(head.subarray(0, n), filled);
      filled += n;
      this.#pendingBytes -= n;
      if (n === head.byteLength) this.#pending.shift();
      else this.#pending[0] = head.subarray(n);
    }
    if (filled === buf.byteLength || this.#remaining === 0 || (partial && filled > 0)) {
      this.#maybeDone();
      return Promise.resolve(filled);
    }
    return new Promise<number>((resolve, reject) => {
      this.#partial = partial;
      this.#target = buf;
      this.#filled = filled;
      this.#settle = resolve;
      this.#fail = reject;
      this.#socket.setTimeout(this.#stallMs);
      this.#socket.resume();
    });
  }

  override _read(): void {
    const want = Math.min(READABLE_CHUNK, this.left);
    if (want === 0) {
      this.push(null);
      return;
    }
    const buf = Buffer.allocUnsafe(want);
    // Partial reads: a stream consumer gets bytes as they come (and keeps them if the
    // connection then drops), not once 256 KiB are in.
    this.#read(buf, true).then(
      (n) => void this.push(n > 0 ? buf.subarray(0, n) : null),
      (err: Error) => void this.destroy(err),
    );
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    clearTimeout(this.#headTimer);
    this.#signal?.removeEventListener("abort", this.#onAbort);
    this.#socket.destroy();
    const fail = this.#fail;
    const settle = this.#settle;
    const filled = this.#filled;
    this.#clearTarget();
    // Bytes already in the lent buffer are delivered; the failure comes with the next read.
    if (filled > 0) settle?.(filled);
    else fail?.(err ?? this.#networkError("response body closed"));
    cb(err);
  }

  #nextBuffer(): Uint8Array {
    const t = this.#target;
    if (t !== undefined && this.#filled < t.byteLength) {
      // Never read past the body into the lent buffer.
      const room = Math.min(t.byteLength - this.#filled, this.#remaining);
      if (room > 0) return t.subarray(this.#filled, this.#filled + room);
    }
    // One scratch buffer per body, reused unless bytes in it were kept (the head, pending
    // bytes): a fresh one per pause would be 32 MB of garbage per GiB.
    return (this.#scratch ??= Buffer.allocUnsafe(SCRATCH_BYTES));
  }

  /** One socket read of `n` bytes into `buf` (a lent buffer or a scratch one). Returns false to pause. */
  #onRead(n: number, buf: Uint8Array): boolean {
    if (this.#onHead !== undefined) {
      this.#scratch = undefined; // kept by the head reader
      return this.#onHeadBytes(Buffer.from(buf.buffer, buf.byteOffset, n));
    }
    const take = Math.min(n, this.#remaining);
    this.#remaining -= take;
    const t = this.#target;
    if (t !== undefined && buf.buffer === t.buffer && buf.byteOffset === t.byteOffset + this.#filled) {
      this.#filled += take;
    } else if (take > 0) {
      let data = Buffer.from(buf.buffer, buf.byteOffset, take);
      if (t !== undefined) {
        const k = Math.min(take, t.byteLength - this.#filled);
        t.set(data.subarray(0, k), this.#filled);
        this.#filled += k;
        data = data.subarray(k);
      }
      if (data.byteLength > 0) {
        this.#pending.push(data);
        this.#pendingBytes += data.byteLength;
        if (buf.buffer === this.#scratch?.buffer) this.#scratch = undefined;
      }
    }
    if (t === undefined) return false;
    if (this.#filled < t.byteLength && this.#remaining > 0 && !(this.#partial && this.#filled > 0)) return true;
    const settle = this.#settle as (n: number) => void;
    const filled = this.#filled;
    this.#clearTarget();
    this.#socket.setTimeout(0);
    this.#maybeDone();
    settle(filled);
    return false;
  }

  #clearTarget(): void {
    this.#target = undefined;
    this.#filled = 0;
    this.#settle = undefined;
    this.#fail = undefined;
  }

  /** Head bytes arrive in scratch buffers; once the blank line is seen, the head is judged. */
  #onHeadBytes(data: Buffer): boolean {
    let got: ReturnType<HeadReader["push"]>;
    try {
      got = this.#headReader.push(data);
    } catch (err) {
      this.#failAll(this.#networkError((err as Error).message));
      return false;
    }
    if (got === undefined) return true;
    clearTimeout(this.#headTimer);
    const { head, rest } = got;
    const onHead = this.#onHead as (head: Head | undefined | Error) => void;
    this.#onHead = undefined;
    const length = head?.headers.get("content-length");
    const lengthOk = length?.length === 1 && /^\d+$/.test(length[0] as string);
    const coded = head?.headers.has("transfer-encoding") === true;
    const success = head !== undefined && (head.status === 200 || head.status === 206);
    const identity = (head?.headers.get("content-encoding") ?? ["identity"]).every((v) => v.trim().toLowerCase() === "identity");
    // A success must be plain bytes of a known length; any other answer (redirect, challenge,
    // 429, error) goes back to the HTTP client as is, with its body (a length, or up to the
    // close): asking again through undici would lose it. Only chunked bodies are asked again.
    if (head === undefined || coded || (success && !(lengthOk && identity))) {
      this.#socket.destroy();
      this.#signal?.removeEventListener("abort", this.#onAbort);
      this.destroy();
      onHead(undefined);
      return false;
    }
    if (lengthOk) this.#declared = this.#remaining = Number((length as string[])[0]);
    else this.#toEof = true;
    this.#remaining = lengthOk ? this.#declared : Number.MAX_SAFE_INTEGER;
    const take = Math.min(rest.byteLength, this.#remaining);
    if (take > 0) {
      this.#pending.push(rest.subarray(0, take));
      this.#pendingBytes = take;
      this.#remaining -= take;
    }
    this.#socket.setTimeout(0);
    onHead(head);
    return false;
  }

  #onEnd(): void {
    if (this.#onHead !== undefined) return this.#failAll(this.#networkError("connection closed before the response head"));
    if (this.#toEof) {
      // A body delimited by the close (an error answer without a length) is complete now.
      this.#remaining = 0;
      const settle = this.#settle;
      const filled = this.#filled;
      this.#clearTarget();
      settle?.(filled);
      return;
    }
    if (this.#remaining > 0) {
      const got = this.#declared - this.#remaining;
      this.#failAll(this.#networkError(`connection ended at byte ${got} of ${this.#declared}`));
    }
  }

  /** Every byte handed out: close the connection (it was `Connection: close` anyway). */
  #maybeDone(): void {
    if (this.#remaining === 0 && this.#pendingBytes === 0) this.#socket.destroy();
  }

  #failAll(err: Error): void {
    if (this.#onHead !== undefined) {
      const onHead = this.#onHead;
      this.#onHead = undefined;
      // Before the head nothing was received: the HTTP client wraps and retries a plain error
      // (as it does undici's), so hand it the cause rather than a finished verdict.
      onHead(err instanceof NetworkError ? ((err.cause as Error | undefined) ?? new Error(err.message.replace(/^GET \S+: /, ""))) : err);
    }
    if (!this.destroyed) this.destroy(err);
  }

  #networkError(message: string, cause?: Error): NetworkError {
    return new NetworkError(`GET ${redactUrl(this.#url)}: ${message}`, {
      ...(cause ? { cause } : {}),
      details: { method: "GET", url: redactUrl(this.#url), errno: (cause as { code?: string } | undefined)?.code },
    });
  }
}
