/**
 * Pusher of one repository. Blobs: HEAD (exists) → cross-repository mount → upload session →
 * one streaming monolithic PUT, or PATCH chunks that resume from the session's `Range` after a
 * 416 or a failure. Upload steps are never blindly retried: a failed monolithic upload restarts
 * in a new session, a failed chunk resumes where the registry says it stands. The newest
 * `Location` is always used (distribution's `_state` token changes with every step).
 */
import { Readable, Transform } from "node:stream";
import {
  abortError,
  DigestMismatchError,
  digestAlgorithm,
  digestOf,
  FerryError,
  InvalidReferenceError,
  isValidTag,
  isManifestLike,
  NetworkError,
  SizeMismatchError,
  sleep,
  type Descriptor,
  type Pusher,
  type PushOptions,
  type PushOutcome,
  type PushSource,
  type TransferHooks,
} from "@ferry/core";
import type { TransportContext } from "./context.ts";
import type { RepositoryEndpoint } from "./endpoint.ts";
import { discard, type HttpResponse } from "./http-client.ts";
import type { AuthScope } from "./options.ts";
import { readCapped } from "./read-body.ts";
import { redactUrl } from "./registry-error.ts";
import { resolveLocation } from "./location.ts";

/** Whole-upload restarts (monolithic) or resumes without progress (chunked) before giving up. */
const MAX_UPLOAD_ATTEMPTS = 4;

function checkTag(tag: string): void {
  if (!isValidTag(tag)) {
    throw new InvalidReferenceError(`bad tag ${JSON.stringify(tag.slice(0, 200))}: allowed are [A-Za-z0-9_.-], up to 128, not starting with "." or "-"`, {
      details: { tag: tag.slice(0, 200) },
    });
  }
}

function isRestartable(err: unknown): boolean {
  const code = (err as { code?: string } | undefined)?.code;
  // NotFound here means the upload session vanished (BLOB_UPLOAD_UNKNOWN); anything not typed is the wire.
  return (
    !(err instanceof FerryError) ||
    code === "Network" ||
    code === "Unavailable" ||
    code === "TooManyRequests" ||
    code === "Unauthorized" ||
    code === "NotFound"
  );
}

/** Counts bytes flowing through and reports the running total. */
function counter(base: number, onProgress: ((sent: number) => void) | undefined): Transform {
  let sent = base;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      sent += chunk.byteLength;
      onProgress?.(sent);
      cb(null, chunk);
    },
  });
}

/** Passes chunks on, reporting the running total; a source that ends short or long is an error. */
async function* counted(chunks: AsyncIterable<Uint8Array>, desc: Descriptor, onProgress: ((sent: number) => void) | undefined): AsyncGenerator<Uint8Array> {
  let sent = 0;
  for await (const chunk of chunks) {
    sent += chunk.byteLength;
    if (sent > desc.size) throw new SizeMismatchError(`push source of ${desc.digest} has more than ${desc.size} bytes`, { details: { digest: desc.digest, expected: desc.size } });
    onProgress?.(sent);
    yield chunk;
  }
  if (sent !== desc.size) throw new SizeMismatchError(`push source of ${desc.digest} ended ${desc.size - sent} bytes early`, { details: { digest: desc.digest, size: sent, expected: desc.size } });
}

/** Pulls exact-size slices off a byte stream, keeping the remainder for the next slice. */
class SliceReader {
  readonly #it: AsyncIterator<Uint8Array>;
  #rest: Uint8Array | undefined;
  readonly #source: Readable;

  constructor(source: Readable) {
    this.#source = source;
    this.#it = (source as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
  }

  async *slice(n: number): AsyncGenerator<Uint8Array> {
    let left = n;
    while (left > 0) {
      let chunk = this.#rest;
      this.#rest = undefined;
      if (!chunk) {
        const r = await this.#it.next();
        if (r.done) throw new NetworkError(`push source ended ${left} bytes early`);
        chunk = r.value;
      }
      if (chunk.byteLength > left) {
        this.#rest = chunk.subarray(left);
        chunk = chunk.subarray(0, left);
      }
      left -= chunk.byteLength;
      yield chunk;
    }
  }

  destroy(): void {
    this.#source.destroy();
  }
}

/** `Range: 0-N` of an upload session → bytes stored (N+1); `0-0` on an empty session is ambiguous, so a missing header means 0. */
function uploadedBytes(res: HttpResponse): number | undefined {
  const m = /^(?:bytes=)?(\d+)-(\d+)$/.exec(res.header("range")?.trim() ?? "");
  return m ? Number(m[2]) + 1 : undefined;
}

export class RegistryPusher implements Pusher {
  readonly #ctx: TransportContext;
  readonly #ep: RepositoryEndpoint;

  constructor(ctx: TransportContext, endpoint: RepositoryEndpoint) {
    this.#ctx = ctx;
    this.#ep = endpoint;
  }

  #scopes(): AuthScope[] {
    return this.#ep.scopes("pull", "push");
  }

  async exists(desc: Descriptor, options: { signal?: AbortSignal } & TransferHooks = {}): Promise<boolean> {
    const kind = isManifestLike(desc.mediaType) ? "manifests" : "blobs";
    const res = await this.#ctx.http.send({
      method: "HEAD",
      url: this.#ep.url(`${kind}/${desc.digest}`),
      headers: kind === "manifests" ? { accept: desc.mediaType } : {},
      scopes: this.#scopes(),
      signal: options.signal,
      onRetry: options.onRetry,
      accept: (s) => s === 200 || s === 404,
    });
    return res.status === 200;
  }

  async push(desc: Descriptor, source: PushSource, options: PushOptions = {}): Promise<PushOutcome> {
    if (isManifestLike(desc.mediaType)) return this.#pushManifest(desc, source, options);
    const signal = options.signal;
    if (await this.exists(desc, { signal, onRetry: options.onRetry })) return "exists";

    let location: URL | undefined;
    let minChunk: number | undefined;
    if (options.mountFrom && options.mountFrom !== this.#ep.repository) {
      const from = options.mountFrom.includes("/") && options.mountFrom.split("/")[0]?.match(/[.:]|^localhost$/)
        ? options.mountFrom.slice(options.mountFrom.indexOf("/") + 1) // a full name: keep only the repository
        : options.mountFrom;
      const res = await this.#ctx.http.send({
        method: "POST",
        url: this.#ep.url("blobs/uploads/", { mount: desc.digest, from }),
        scopes: [...this.#scopes(), { repository: from, actions: ["pull"] }],
        signal,
        retry: false,
        // 401/403/404: the mount is not possible here (Harbor answers 401), upload normally.
        accept: (s) => s === 201 || s === 202 || s === 401 || s === 403 || s === 404,
      }).catch((err: unknown) => {
        if (signal?.aborted) throw err;
        return undefined;
      });
      if (res) {
        discard(res);
        if (res.status === 201 && (await this.exists(desc, { signal, onRetry: options.onRetry }))) return "mounted";
        if (res.status === 202 && res.header("location")) {
          location = this.#checkLocation(resolveLocation(res.header("location") as string, res.url, `POST ${redactUrl(res.url)}`));
          minChunk = Number(res.header("oci-chunk-min-length")) || undefined;
        }
      }
    }

    let lastErr: unknown;
    for (let attempt = 1; attempt <= MAX_UPLOAD_ATTEMPTS; attempt++) {
      if (signal?.aborted) throw abortError(signal);
      try {
        if (!location) {
          const session = await this.#startSession(signal);
          location = session.location;
          minChunk = session.minChunk;
        }
        const chunk = this.#ctx.uploadChunkSize;
        if (chunk !== undefined && desc.size > 0) {
          await this.#chunked(desc, source, location, Math.max(chunk, minChunk ?? 0, this.#ctx.minUploadChunkSize), options);
        } else {
          await this.#monolithic(desc, source, location, options);
        }
        return "pushed";
      } catch (err) {
        if (signal?.aborted) throw abortError(signal);
        if (!isRestartable(err) || attempt === MAX_UPLOAD_ATTEMPTS) throw err;
        lastErr = err;
        location = undefined; // a broken session is not reused: start a fresh one
        const delayMs = Math.min(200 * 2 ** (attempt - 1), 5000);
        options.onRetry?.({ attempt, delayMs, reason: `upload restarted: ${(err as Error).message}`, status: (err as FerryError).details?.status as number | undefined });
        await sleep(delayMs, signal);
      }
    }
    throw lastErr;
  }

  async #startSession(signal: AbortSignal | undefined): Promise<{ location: URL; minChunk?: number }> {
    const res = await this.#ctx.http.send({
      method: "POST",
      url: this.#ep.url("blobs/uploads/"),
      headers: { "content-length": "0" },
      scopes: this.#scopes(),
      signal,
      accept: (s) => s === 202,
    });
    discard(res);
    const loc = res.header("location");
    if (!loc) throw new FerryError("Registry", `POST ${redactUrl(res.url)}: upload session without Location`, { details: { status: res.status } });
    return { location: this.#checkLocation(resolveLocation(loc, res.url, `POST ${redactUrl(res.url)}`)), minChunk: Number(res.header("oci-chunk-min-length")) || undefined };
  }

  /** Credentials go to the registry's own origin only, never to an upload URL elsewhere. */
  #foreign(url: URL): boolean {
    return url.origin !== new URL(this.#ep.host.base).origin;
  }

  /** An upload Location must never downgrade https. */
  #checkLocation(loc: URL): URL {
    const base = new URL(this.#ep.host.base);
    if (base.protocol === "https:" && loc.protocol !== "https:") {
      throw new FerryError("Registry", `upload Location ${redactUrl(loc)} downgrades https`, { details: { url: redactUrl(loc) } });
    }
    return loc;
  }

  #withDigest(location: URL, desc: Descriptor): URL {
    const u = new URL(location);
    u.searchParams.set("digest", desc.digest);
    return u;
  }

  #verifyDigestHeader(res: HttpResponse, desc: Descriptor): void {
    const dcd = res.header("docker-content-digest");
    if (dcd && dcd !== desc.digest) {
      throw new DigestMismatchError(`registry stored ${dcd}, expected ${desc.digest}`, {
        details: { expected: desc.digest, actual: dcd, url: redactUrl(res.url) },
      });
    }
  }

  async #monolithic(desc: Descriptor, source: PushSource, location: URL, options: PushOptions): Promise<void> {
    const headers = { "content-type": "application/octet-stream", "content-length": String(desc.size) };
    if (source.chunks && desc.size > 0) {
      // Lent chunks: undici pulls the next one only after the last is written to the socket.
      await this.#finishUpload(desc, location, headers, counted(source.chunks(0), desc, options.onProgress), options.signal);
      return;
    }
    const src = await source.open(0);
    const body = desc.size > 0 ? src.pipe(counter(0, options.onProgress)) : (src.destroy(), "");
    if (typeof body !== "string") {
      // pipe() neither forwards source errors nor closes the source when the request dies.
      src.once("error", (e) => body.destroy(e));
      body.once("close", () => src.destroy());
    }
    await this.#finishUpload(desc, location, headers, body, options.signal);
  }

  /** The closing `PUT <location>?digest=` of an upload session (with the whole blob, or empty after PATCHes). */
  async #finishUpload(desc: Descriptor, location: URL, headers: Record<string, string>, body: Readable | AsyncIterable<Uint8Array> | string | undefined, signal: AbortSignal | undefined): Promise<void> {
    const res = await this.#ctx.http.send({
      method: "PUT",
      url: this.#withDigest(location, desc),
      headers,
      body,
      scopes: this.#scopes(),
      signal,
      noAuth: this.#foreign(location),
      retry: false,
      accept: (s) => s === 201 || s === 204,
      followRedirects: false,
    });
    discard(res);
    this.#verifyDigestHeader(res, desc);
  }

  async #chunked(desc: Descriptor, source: PushSource, location: URL, chunkSize: number, options: PushOptions): Promise<void> {
    const signal = options.signal;
    let offset = 0;
    let reader = new SliceReader(await source.open(0));
    let stuck = 0;
    // Progress is a new high-water mark: a session that accepts a chunk and then says it holds
    // less (416, Range 0-0) would otherwise reset the count forever.
    let highest = 0;
    try {
      while (offset < desc.size) {
        const n = Math.min(chunkSize, desc.size - offset);
        let res: HttpResponse | undefined;
        let failure: unknown;
        const slice = Readable.from(reader.slice(n), { objectMode: false });
        const body = slice.pipe(counter(offset, options.onProgress));
        // pipe() does not forward errors: a source destroyed mid-read (after a refused PATCH) must
        // end this body, not surface as an uncaught stream error.
        slice.once("error", (e) => body.destroy(e));
        try {
          res = await this.#ctx.http.send({
            method: "PATCH",
            url: location,
            headers: {
              "content-type": "application/octet-stream",
              "content-length": String(n),
              "content-range": `${offset}-${offset + n - 1}`,
            },
            body,
            scopes: this.#scopes(),
            signal,
            noAuth: this.#foreign(location),
            retry: false,
            accept: (s) => s === 202 || s === 416,
            followRedirects: false,
          });
          discard(res);
        } catch (err) {
          if (signal?.aborted) throw abortError(signal);
          if (!isRestartable(err) || (err as { code?: string }).code === "NotFound") throw err;
          failure = err;
        }
        if (res && res.header("location")) location = this.#checkLocation(resolveLocation(res.header("location") as string, res.url, `PATCH ${redactUrl(res.url)}`));
        const stored = res && res.status === 202 ? uploadedBytes(res) : undefined;
        if (res && res.status === 202 && (stored === undefined || stored === offset + n)) {
          offset += n;
          if (offset > highest) {
            highest = offset;
            stuck = 0;
          }
          continue;
        }
        // 416, a Range that disagrees, or a failed PATCH: ask the session where it stands and resume there.
        const status = await this.#ctx.http.send({
          method: "GET",
          url: location,
          scopes: this.#scopes(),
          signal,
          noAuth: this.#foreign(location),
          accept: (s) => s === 204 || s === 200,
        });
        discard(status);
        if (status.header("location")) location = this.#checkLocation(resolveLocation(status.header("location") as string, status.url, `GET ${redactUrl(status.url)}`));
        const at = uploadedBytes(status) ?? 0;
        if (at > highest) {
          highest = at;
          stuck = 0;
        } else stuck++;
        if (stuck >= MAX_UPLOAD_ATTEMPTS) {
          throw new NetworkError(`chunked upload of ${desc.digest} makes no progress at byte ${at}`, { cause: failure, details: { offset: at } });
        }
        options.onRetry?.({ attempt: stuck + 1, delayMs: 0, reason: `chunk upload resumed at byte ${at}`, status: res?.status });
        offset = at;
        reader.destroy();
        reader = new SliceReader(await source.open(offset));
      }
    } finally {
      reader.destroy();
    }
    await this.#finishUpload(desc, location, { "content-length": "0" }, undefined, signal);
  }

  async #pushManifest(desc: Descriptor, source: PushSource, options: PushOptions): Promise<PushOutcome> {
    if (options.tag) checkTag(options.tag);
    const data = await readCapped(await source.open(0), this.#ctx.maxManifestBytes, `manifest ${desc.digest}`);
    const actual = digestOf(data, digestAlgorithm(desc.digest));
    if (actual !== desc.digest || data.byteLength !== desc.size) {
      throw new DigestMismatchError(`manifest bytes hash to ${actual} (${data.byteLength} bytes), descriptor says ${desc.digest} (${desc.size})`, {
        details: { expected: desc.digest, actual },
      });
    }
    const exists = await this.exists(desc, { signal: options.signal, onRetry: options.onRetry });
    if (!exists) await this.#putManifest(desc, data, desc.digest, options.signal);
    if (options.tag) await this.#putManifest(desc, data, options.tag, options.signal);
    options.onProgress?.(data.byteLength);
    return exists ? "exists" : "pushed";
  }

  async #putManifest(desc: Descriptor, data: Uint8Array, reference: string, signal: AbortSignal | undefined): Promise<void> {
    const res = await this.#ctx.http.send({
      method: "PUT",
      url: this.#ep.url(`manifests/${reference}`),
      headers: { "content-type": desc.mediaType },
      body: data,
      scopes: this.#scopes(),
      signal,
      accept: (s) => s === 201 || s === 200 || s === 204,
    });
    discard(res);
    this.#verifyDigestHeader(res, desc);
  }

  /** Point `tag` at a manifest already in the repository (fetched by digest, then PUT by tag). */
  async tag(desc: Descriptor, tag: string, options: { signal?: AbortSignal } = {}): Promise<void> {
    checkTag(tag);
    const res = await this.#ctx.http.send({
      method: "GET",
      url: this.#ep.url(`manifests/${desc.digest}`),
      headers: { accept: desc.mediaType },
      scopes: this.#scopes(),
      signal: options.signal,
    });
    const data = await readCapped(res.body, this.#ctx.maxManifestBytes, `manifest ${desc.digest}`);
    if (digestOf(data, digestAlgorithm(desc.digest)) !== desc.digest) {
      throw new DigestMismatchError(`manifest fetched for tagging does not hash to ${desc.digest}`, { details: { expected: desc.digest } });
    }
    await this.#putManifest(desc, data, tag, options.signal);
  }
}
