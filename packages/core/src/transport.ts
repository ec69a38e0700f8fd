/**
 * Transport contracts the orchestration (pull/push/copy) is written against. A registry
 * (`@ferry/fetcher`), an OCI layout or a memory store each provide them.
 */
import type { Readable } from "node:stream";
import type { ReaderAt } from "./content.ts";
import type { Descriptor } from "./descriptor.ts";

export interface Resolved {
  /** Canonical name of the repository the reference points into (e.g. `127.0.0.1:5000/demo`). */
  name: string;
  descriptor: Descriptor;
}

/** Why a transport waits before trying again. */
export interface RetryInfo {
  attempt: number;
  delayMs: number;
  reason: string;
  status?: number;
}

/** Callbacks a transport uses to report what a caller cannot see from the byte stream. */
export interface TransferHooks {
  onRetry?(info: RetryInfo): void;
  /** A fetch resumed after a dropped connection, at this offset. */
  onReconnect?(offset: number): void;
}

export interface FetchOptions extends TransferHooks {
  signal?: AbortSignal;
  /** Start at this byte offset (the transport uses Range or seeks). */
  offset?: number;
}

/** Reads blobs and manifests of one repository. */
export interface Fetcher {
  /**
   * A stream of the content's bytes from `offset`. Size and digest are verified while streaming
   * when the stream starts at 0: the stream errors with `SizeMismatch`/`DigestMismatch` at its end.
   * When `offset` > 0 the returned stream carries `rangeIgnored = true` if the source could only
   * start again from 0 (the caller then truncates its writer or discards bytes).
   */
  fetch(desc: Descriptor, options?: FetchOptions): Promise<FetchStream>;
  /** Random access where the transport supports it. */
  readerAt?(desc: Descriptor, options?: FetchOptions): Promise<ReaderAt>;
}

/** A fetched blob; `readInto` as on `ByteStream` (registry fetches of large blobs have it). */
export type FetchStream = Readable & { rangeIgnored?: boolean; readInto?(buf: Uint8Array): Promise<number> };

export interface Resolver {
  /** Turn a reference (`host/repo:tag`, `…@sha256:…`, or a store name) into a descriptor. */
  resolve(ref: string, options?: { signal?: AbortSignal } & TransferHooks): Promise<Resolved>;
  fetcher(name: string): Promise<Fetcher>;
  pusher?(name: string): Promise<Pusher>;
}

export type PushOutcome = "pushed" | "exists" | "mounted";

export interface PushOptions extends TransferHooks {
  signal?: AbortSignal;
  /** Repository (same registry) that may already hold the blob: try a cross-repository mount. */
  mountFrom?: string;
  /** Called with the number of bytes sent so far. */
  onProgress?(sent: number): void;
  /** Tag to push a manifest under (manifests are always addressable by digest). */
  tag?: string;
}

/** Where content comes from when pushing: a fresh stream each call (a retry re-opens it). */
export interface PushSource {
  open(offset?: number): Readable | Promise<Readable>;
  /**
   * Optional: the same bytes as `open(offset)`, lent rather than given: a chunk's memory is
   * reused once the next chunk is asked for, so the consumer must be done with each chunk (e.g.
   * a socket write that has drained) before it pulls the next. Consumers that keep chunks
   * (buffers, batches) use `open`.
   */
  chunks?(offset?: number): AsyncIterable<Uint8Array>;
}

/** Writes blobs and manifests into one repository. */
export interface Pusher {
  /** Whether the repository holds `desc`; retries of the check are reported through `onRetry`. */
  exists(desc: Descriptor, options?: { signal?: AbortSignal } & TransferHooks): Promise<boolean>;
  /** Upload `desc` (blob or manifest) unless it exists. Manifests: `source` yields the raw bytes. */
  push(desc: Descriptor, source: PushSource, options?: PushOptions): Promise<PushOutcome>;
  /** Point `tag` at an already-pushed manifest. */
  tag?(desc: Descriptor, tag: string, options?: { signal?: AbortSignal }): Promise<void>;
}
