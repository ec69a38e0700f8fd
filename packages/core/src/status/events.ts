/**
 * The status events of a transfer operation (pull, push, copy). One discriminated union on
 * `type`; every per-blob event carries the blob's `ref` (its stable ingest key, e.g.
 * `layer-sha256:…`), so a renderer keeps one row per ref and replaces it with each new event.
 *
 * Lifecycle of one blob: `waiting` → (`exists` | `skipped` | `mounted` |
 * [`resumed`] → `downloading`/`uploading`* → `committing` → `done`), with `retrying` possible
 * while moving and `error` ending it on failure. Operation-wide: `resolving` → `resolved` first,
 * `progress` (throttled) throughout, a final `progress` just before the stream completes.
 *
 * Times are milliseconds since the Unix epoch (cheap to produce, trivially serialisable).
 */
import type { Descriptor } from "../descriptor.ts";
import type { Digest } from "../digest.ts";
import type { ErrorCode, FerryError } from "../errors.ts";

/** What role a blob plays in the graph; lets a renderer label rows without parsing media types. */
export type BlobKind = "index" | "manifest" | "config" | "layer" | "blob";

/** Direction of the bytes: into a local store (`download`) or out to a pusher (`upload`). */
export type TransferDirection = "download" | "upload";

/** Fields every per-blob event carries. */
export interface BlobEventBase {
  /** Stable key of the blob in this operation (the ingest ref, e.g. `layer-sha256:…`). */
  ref: string;
  digest: Digest;
  mediaType: string;
  kind: BlobKind;
  /** Size of the blob in bytes (from its descriptor). */
  total: number;
  /** When this event was produced (ms since epoch). */
  time: number;
}

/** The reference is being resolved to a root descriptor. */
export interface ResolvingEvent {
  type: "resolving";
  /** The reference as given by the caller. */
  reference: string;
  time: number;
}

/** The reference resolved; the walk starts from `descriptor`. */
export interface ResolvedEvent {
  type: "resolved";
  reference: string;
  /** Canonical repository name the reference points into. */
  name: string;
  descriptor: Descriptor;
  time: number;
}

/** The blob is known and queued (waiting for a concurrency slot). */
export interface WaitingEvent extends BlobEventBase {
  type: "waiting";
}

/** The destination already has the blob; nothing was transferred. */
export interface ExistsEvent extends BlobEventBase {
  type: "exists";
}

/** Why a descriptor of the graph was not transferred. */
export type SkipReason =
  /** Filtered out by the platform matcher. */
  | "platform"
  /** Beyond the manifest limit. */
  | "limit"
  /** Non-distributable layer (its `urls` say where it lives). */
  | "nondistributable"
  /** A handler chose not to descend (e.g. the destination already holds the whole sub-graph). */
  | "filtered";

/** The blob is part of the graph but deliberately not transferred. */
export interface SkippedEvent extends BlobEventBase {
  type: "skipped";
  reason: SkipReason;
}

/** Bytes moving. `offset` counts bytes at the destination, including any resumed prefix. */
export interface TransferringEvent extends BlobEventBase {
  type: "downloading" | "uploading";
  offset: number;
  /** Bytes moved over the transport for this blob in this operation (excludes a resumed prefix). */
  transferred: number;
  /** When the first byte of this blob started moving in this operation. */
  startedAt: number;
  updatedAt: number;
}
export interface DownloadingEvent extends TransferringEvent {
  type: "downloading";
}
export interface UploadingEvent extends TransferringEvent {
  type: "uploading";
}

/** A partial ingest was found and the transfer continues from `offset` instead of 0. */
export interface ResumedEvent extends BlobEventBase {
  type: "resumed";
  offset: number;
}

/** All bytes arrived; the destination verifies and publishes the blob. */
export interface CommittingEvent extends BlobEventBase {
  type: "committing";
}

/** The blob is committed (or pushed) at the destination. */
export interface DoneEvent extends BlobEventBase {
  type: "done";
  /** Bytes moved over the transport for this blob in this operation. */
  transferred: number;
  startedAt: number;
}

/** The blob was mounted from another repository of the same registry (no bytes moved). */
export interface MountedEvent extends BlobEventBase {
  type: "mounted";
  /** Repository it was mounted from. */
  from: string;
}

/**
 * The transport waits before trying again. `ref`/`digest` are absent when the retry concerns
 * the operation rather than one blob (e.g. resolving).
 */
export interface RetryingEvent {
  type: "retrying";
  ref?: string;
  digest?: Digest;
  reason: string;
  /** Delay before the next attempt, in ms. */
  delayMs: number;
  /** 1-based number of the attempt about to be made. */
  attempt: number;
  /** HTTP status that caused the retry, when there was one. */
  status?: number;
  time: number;
}

/**
 * Something failed. With a `ref` the failure belongs to one blob; the operation then fails with
 * the first such error (the stream errors with it too) and the remaining work is cancelled.
 */
export interface ErrorEvent {
  type: "error";
  ref?: string;
  digest?: Digest;
  code: ErrorCode;
  message: string;
  error: FerryError;
  time: number;
}

/** A name (tag) now points at the root: a store name was recorded or a tag was pushed. */
export interface TaggedEvent {
  type: "tagged";
  name: string;
  descriptor: Descriptor;
  time: number;
}

/** Operation totals. All byte counts are sums over blobs in the walked graph known so far. */
export interface OperationTotals {
  /** Bytes present at the destination: transferred, resumed, existing or mounted. */
  bytesDone: number;
  /** Sum of the sizes of every blob to be present at the end (grows while the walk discovers children). */
  bytesTotal: number;
  /** Bytes actually moved over the transport in this operation (what a resume saves is not here). */
  bytesTransferred: number;
  /** Blobs finished (done, exists, mounted). */
  blobsDone: number;
  /** Blobs known so far (skipped ones are not counted). */
  blobsTotal: number;
  /** Blobs that were already present (exists or mounted). */
  blobsExisting: number;
  /** Smoothed transfer rate in bytes per second (0 until measured). */
  rate: number;
  /** Estimated milliseconds until `bytesDone` reaches `bytesTotal`; undefined while unknown. */
  etaMs: number | undefined;
  /** Milliseconds since the operation started. */
  elapsedMs: number;
}

/** Throttled snapshot of the operation totals; the last one is emitted just before completion. */
export interface ProgressEvent extends OperationTotals {
  type: "progress";
  time: number;
}

export type BlobEvent =
  | WaitingEvent
  | ExistsEvent
  | SkippedEvent
  | DownloadingEvent
  | UploadingEvent
  | ResumedEvent
  | CommittingEvent
  | DoneEvent
  | MountedEvent;

export type StatusEvent =
  | ResolvingEvent
  | ResolvedEvent
  | BlobEvent
  | RetryingEvent
  | ErrorEvent
  | TaggedEvent
  | ProgressEvent;

export type StatusEventType = StatusEvent["type"];

/** Events that end a blob's lifecycle (always delivered, never throttled away). */
export const FinalBlobEventTypes: ReadonlySet<StatusEventType> = new Set<StatusEventType>([
  "exists",
  "skipped",
  "done",
  "mounted",
]);

/** True for events that describe one blob (they carry `ref`, `digest`, `mediaType`, `kind`, `total`). */
export function isBlobEvent(e: StatusEvent): e is BlobEvent {
  return "kind" in e;
}

/** The result a transfer operation's `done` promise resolves with. */
export interface TransferResult {
  /** Root descriptor of the transferred graph. */
  root: Descriptor;
  /** Repository or store name the root was resolved in. */
  name: string;
  /** Final operation totals. */
  totals: OperationTotals;
}
