/**
 * The producer side of the status stream. Transfer code reports what happens to each blob
 * through a {@link BlobStatus}; the reporter keeps the operation totals, throttles progress
 * events, remembers the latest state of every ref for late subscribers, and fans every event
 * out to the RxJS stream and the event emitter.
 */
import { EventEmitter } from "eventemitter3";
import { Observable, Subject } from "rxjs";
import type { Descriptor } from "../descriptor.ts";
import { FerryError, InternalError } from "../errors.ts";
import { isConfigMediaType, isIndexMediaType, isManifestMediaType } from "../media-types.ts";
import type {
  BlobEvent,
  BlobEventBase,
  BlobKind,
  ErrorEvent,
  OperationTotals,
  ProgressEvent,
  ResolvedEvent,
  ResolvingEvent,
  RetryingEvent,
  SkipReason,
  StatusEvent,
  TaggedEvent,
  TransferDirection,
  TransferResult,
  TransferringEvent,
} from "./events.ts";
import type { StatusEventMap } from "./operation.ts";

export interface StatusReporterOptions {
  /**
   * Minimum interval in ms between two `downloading`/`uploading` events of one ref, and between
   * two `progress` events. The latest state is always delivered when the interval ends, and a
   * blob's final events are never dropped. `0` disables throttling. Default 100.
   */
  throttleMs?: number;
  /** Clock, for tests. Default `Date.now`. */
  now?: () => number;
}

/** How long transfer-rate samples are kept: the rate is averaged over this window. */
const RATE_WINDOW_MS = 3000;

/** The role of a blob in the graph, from its media type. */
export function blobKind(mediaType: string): BlobKind {
  if (isIndexMediaType(mediaType)) return "index";
  if (isManifestMediaType(mediaType)) return "manifest";
  if (isConfigMediaType(mediaType)) return "config";
  if (mediaType.includes("layer") || mediaType.includes("rootfs")) return "layer";
  return "blob";
}

/** Normalise anything thrown into a typed ferry error. */
export function toFerryError(err: unknown): FerryError {
  if (err instanceof FerryError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new InternalError(message, { cause: err });
}

export class StatusReporter {
  readonly status$: Observable<StatusEvent>;
  readonly events = isolateListeners(new EventEmitter<StatusEventMap>());
  readonly done: Promise<TransferResult>;

  readonly #throttleMs: number;
  readonly #now: () => number;
  readonly #startedAt: number;
  readonly #subject = new Subject<StatusEvent>();
  /** Latest emitted event per ref, in order of first appearance (the replay state). */
  readonly #latest = new Map<string, BlobEvent | ErrorEvent>();
  #operation: ResolvingEvent | ResolvedEvent | undefined;
  #tagged: TaggedEvent | undefined;
  #operationError: ErrorEvent | undefined;
  #lastProgress: ProgressEvent | undefined;
  #finished: { error?: FerryError } | undefined;

  // Totals.
  #bytesDone = 0;
  #bytesTotal = 0;
  #bytesTransferred = 0;
  #blobsDone = 0;
  #blobsTotal = 0;
  #blobsExisting = 0;
  #samples: Array<{ t: number; bytes: number }> = [];
  #rate = 0;

  // Throttling of the totals.
  #progressTimer: NodeJS.Timeout | undefined;
  #heartbeat: NodeJS.Timeout;
  #lastProgressAt = Number.NEGATIVE_INFINITY;
  readonly #blobs = new Set<BlobStatus>();

  #resolve!: (r: TransferResult) => void;
  #reject!: (e: FerryError) => void;

  constructor(options: StatusReporterOptions = {}) {
    // Capped at what a Node timer takes (about 24.8 days): beyond it a timer fires after 1 ms.
    this.#throttleMs = Math.min(Math.max(0, options.throttleMs ?? 100), 2 ** 31 - 1);
    this.#now = options.now ?? Date.now;
    this.#startedAt = this.#now();
    this.done = new Promise<TransferResult>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    // While bytes stall no event would fire, and a renderer would keep showing the last rate:
    // a heartbeat keeps `rate` and `etaMs` honest (the rate decays to 0 over the window).
    const beat = Math.max(this.#throttleMs, 1000);
    this.#heartbeat = setInterval(() => this.#scheduleProgress(), beat);
    this.#heartbeat.unref?.();
    // A caller that only watches status$ must not get an unhandled rejection from `done`.
    this.done.catch(() => undefined);
    this.status$ = new Observable<StatusEvent>((subscriber) => {
      for (const e of this.snapshot()) subscriber.next(e);
      if (this.#finished) {
        if (this.#finished.error) subscriber.error(this.#finished.error);
        else subscriber.complete();
        return undefined;
      }
      const sub = this.#subject.subscribe(subscriber);
      return () => sub.unsubscribe();
    });
  }

  get throttleMs(): number {
    return this.#throttleMs;
  }

  get finished(): boolean {
    return this.#finished !== undefined;
  }

  now(): number {
    return this.#now();
  }

  /** The replay state: latest operation event, latest event of each ref, tag, failure, latest totals. */
  snapshot(): StatusEvent[] {
    const out: StatusEvent[] = [];
    if (this.#operation) out.push(this.#operation);
    out.push(...this.#latest.values());
    if (this.#tagged) out.push(this.#tagged);
    if (this.#operationError) out.push(this.#operationError);
    if (this.#lastProgress) out.push(this.#lastProgress);
    return out;
  }

  totals(): OperationTotals {
    const elapsedMs = this.#now() - this.#startedAt;
    const left = Math.max(0, this.#bytesTotal - this.#bytesDone);
    return {
      bytesDone: this.#bytesDone,
      bytesTotal: this.#bytesTotal,
      bytesTransferred: this.#bytesTransferred,
      blobsDone: this.#blobsDone,
      blobsTotal: this.#blobsTotal,
      blobsExisting: this.#blobsExisting,
      rate: this.#rate,
      etaMs: left === 0 ? 0 : this.#rate > 0 ? Math.round((left / this.#rate) * 1000) : undefined,
      elapsedMs,
    };
  }

  resolving(reference: string): void {
    this.#emit({ type: "resolving", reference, time: this.#now() });
  }

  resolved(reference: string, name: string, descriptor: Descriptor): void {
    this.#emit({ type: "resolved", reference, name, descriptor, time: this.#now() });
  }

  tagged(name: string, descriptor: Descriptor): void {
    this.#emit({ type: "tagged", name, descriptor, time: this.#now() });
  }

  /** A retry that concerns the operation, not one blob (blob retries go through {@link BlobStatus}). */
  retrying(info: { reason: string; delayMs: number; attempt: number; status?: number }): void {
    this.#emit({ type: "retrying", ...info, time: this.#now() });
  }

  /** Start tracking one blob. `ref` defaults to a stable key derived from the descriptor. */
  blob(desc: Descriptor, direction: TransferDirection, ref?: string): BlobStatus {
    const b = new BlobStatus(this, desc, direction, ref ?? `${blobKind(desc.mediaType)}-${desc.digest}`);
    this.#blobs.add(b);
    return b;
  }

  /** Finish successfully: final totals, then completion. Idempotent with {@link fail}. */
  complete(result: Omit<TransferResult, "totals">): void {
    if (this.#finished) return;
    clearInterval(this.#heartbeat);
    this.#flushAll();
    this.#emitProgress();
    const full: TransferResult = { ...result, totals: this.totals() };
    this.#finished = {};
    this.#subject.complete();
    this.#safeEmit("end", full);
    this.#resolve(full);
  }

  /** Finish with `err`: an `error` event, final totals, then the stream errors. */
  fail(err: unknown, blob?: { ref: string; digest: Descriptor["digest"] }): void {
    if (this.#finished) return;
    clearInterval(this.#heartbeat);
    const error = toFerryError(err);
    this.#flushAll();
    this.#emit({
      type: "error",
      ...(blob ? { ref: blob.ref, digest: blob.digest } : {}),
      code: error.code,
      message: error.message,
      error,
      time: this.#now(),
    });
    this.#emitProgress();
    this.#finished = { error };
    this.#subject.error(error);
    this.#safeEmit("fail", error);
    this.#reject(error);
  }

  // ---- internal, used by BlobStatus ----

  /** @internal */
  _emitBlob(e: BlobEvent | ErrorEvent | RetryingEvent): void {
    this.#emit(e);
  }

  /** @internal */
  _account(delta: Partial<Record<"bytesDone" | "bytesTotal" | "bytesTransferred" | "blobsDone" | "blobsTotal" | "blobsExisting", number>>): void {
    this.#bytesDone += delta.bytesDone ?? 0;
    this.#bytesTotal += delta.bytesTotal ?? 0;
    this.#bytesTransferred += delta.bytesTransferred ?? 0;
    this.#blobsDone += delta.blobsDone ?? 0;
    this.#blobsTotal += delta.blobsTotal ?? 0;
    this.#blobsExisting += delta.blobsExisting ?? 0;
    this.#scheduleProgress();
  }

  /** @internal */
  _forget(b: BlobStatus): void {
    this.#blobs.delete(b);
  }

  #flushAll(): void {
    for (const b of this.#blobs) b._flush();
  }

  #scheduleProgress(): void {
    if (this.#finished) return;
    const wait = this.#lastProgressAt + this.#throttleMs - this.#now();
    if (wait <= 0) {
      this.#emitProgress();
      return;
    }
    if (this.#progressTimer) return;
    this.#progressTimer = setTimeout(() => {
      this.#progressTimer = undefined;
      this.#emitProgress();
    }, wait);
    this.#progressTimer.unref?.();
  }

  #emitProgress(): void {
    if (this.#progressTimer) {
      clearTimeout(this.#progressTimer);
      this.#progressTimer = undefined;
    }
    if (this.#finished) return;
    const t = this.#now();
    this.#sampleRate(t);
    this.#lastProgressAt = t;
    this.#emit({ type: "progress", ...this.totals(), time: t });
  }

  #sampleRate(t: number): void {
    this.#samples.push({ t, bytes: this.#bytesTransferred });
    while (this.#samples.length > 2 && t - (this.#samples[0] as { t: number }).t > RATE_WINDOW_MS) this.#samples.shift();
    const first = this.#samples[0] as { t: number; bytes: number };
    const dt = t - first.t;
    // Too short a window gives wild numbers; keep the previous rate until 100 ms are covered.
    if (dt >= 100) this.#rate = Math.round(((this.#bytesTransferred - first.bytes) * 1000) / dt);
  }

  #emit(e: StatusEvent): void {
    if (this.#finished) return;
    switch (e.type) {
      case "resolving":
      case "resolved":
        this.#operation = e;
        break;
      case "tagged":
        this.#tagged = e;
        break;
      case "progress":
        this.#lastProgress = e;
        break;
      case "retrying":
        break;
      case "error":
        if (e.ref !== undefined) this.#latest.set(e.ref, e);
        else this.#operationError = e;
        break;
      default:
        if (e.ref !== undefined) this.#latest.set(e.ref, e);
    }
    this.#subject.next(e);
    this.#safeEmit(e.type, e as never);
    this.#safeEmit("status", e);
  }

  /** A throwing listener must not break the transfer (see {@link isolateListeners}). */
  #safeEmit<K extends keyof StatusEventMap>(name: K, ...args: StatusEventMap[K]): void {
    try {
      (this.events.emit as (n: K, ...a: StatusEventMap[K]) => boolean)(name, ...args);
    } catch (err) {
      rethrowLater(err);
    }
  }
}

function rethrowLater(err: unknown): void {
  queueMicrotask(() => {
    throw err;
  });
}

type Listener = (...args: unknown[]) => unknown;

/**
 * Every listener runs whatever the others do: one that throws has its error rethrown on a
 * microtask (an uncaught exception, as a throwing listener is in Node) and the listeners after
 * it still get the event. A plain emit stops at the first throw. Listeners are wrapped as they
 * are added (`on`/`addListener`/`once`) and found again by `off`/`removeListener`.
 */
function isolateListeners(emitter: EventEmitter<StatusEventMap>): EventEmitter<StatusEventMap> {
  const wrappers = new WeakMap<Listener, Listener>();
  const wrap = (fn: Listener): Listener => {
    let w = wrappers.get(fn);
    if (w === undefined) {
      w = function (this: unknown, ...args: unknown[]): unknown {
        try {
          return fn.apply(this, args);
        } catch (err) {
          rethrowLater(err);
          return undefined;
        }
      };
      wrappers.set(fn, w);
    }
    return w;
  };
  type Add = (event: string, fn: Listener, context?: unknown) => EventEmitter<StatusEventMap>;
  type Remove = (event: string, fn?: Listener, context?: unknown, once?: boolean) => EventEmitter<StatusEventMap>;
  const raw = emitter as unknown as Record<"on" | "addListener" | "once", Add> & Record<"off" | "removeListener", Remove>;
  const on = raw.on.bind(emitter);
  const once = raw.once.bind(emitter);
  const off = raw.off.bind(emitter);
  raw.on = raw.addListener = (event, fn, context) => on(event, wrap(fn), context);
  raw.once = (event, fn, context) => once(event, wrap(fn), context);
  raw.off = raw.removeListener = (event, fn, context, onceOnly) => off(event, fn === undefined ? undefined : (wrappers.get(fn) ?? fn), context, onceOnly);
  return emitter;
}

/** Reports the lifecycle of one blob and keeps its share of the operation totals. */
export class BlobStatus {
  readonly ref: string;
  readonly desc: Descriptor;
  readonly direction: TransferDirection;
  readonly #r: StatusReporter;
  #counted = false;
  #ended = false;
  /** Bytes of this blob counted into `bytesDone`. */
  #offset = 0;
  #transferred = 0;
  #startedAt: number | undefined;
  #destinationReports = false;
  #resumedAt: number | undefined;
  #committing = false;
  #pending: TransferringEvent | undefined;
  #lastMoveAt = Number.NEGATIVE_INFINITY;
  #timer: NodeJS.Timeout | undefined;

  constructor(reporter: StatusReporter, desc: Descriptor, direction: TransferDirection, ref: string) {
    this.#r = reporter;
    this.desc = desc;
    this.direction = direction;
    this.ref = ref;
  }

  /** True once the blob reached a final state (done, exists, mounted, skipped, error). */
  get ended(): boolean {
    return this.#ended;
  }

  get transferred(): number {
    return this.#transferred;
  }

  #base(): BlobEventBase {
    return {
      ref: this.ref,
      digest: this.desc.digest,
      mediaType: this.desc.mediaType,
      kind: blobKind(this.desc.mediaType),
      total: this.desc.size,
      time: this.#r.now(),
    };
  }

  #count(): void {
    if (this.#counted) return;
    this.#counted = true;
    this.#r._account({ blobsTotal: 1, bytesTotal: this.desc.size });
  }

  /** Known and queued. Counts the blob into the totals. */
  waiting(): void {
    this.#count();
    this.#r._emitBlob({ type: "waiting", ...this.#base() });
  }

  /** Partial data found at the destination: the transfer continues at `offset`. Reported once per offset. */
  resumed(offset: number): void {
    if (this.#ended || this.#resumedAt === offset) return;
    this.#resumedAt = offset;
    this.#count();
    this._flush();
    this.#setOffset(offset);
    this.#r._emitBlob({ type: "resumed", ...this.#base(), offset });
  }

  /**
   * Bytes crossed the transport: `moved` since the last call, the source now at `position`.
   * Counts into `bytesTransferred`; also moves the blob's offset unless the destination reports
   * its own (see {@link stored}), which is the better measure of what would survive a cancel.
   */
  moved(position: number, moved: number): void {
    if (this.#ended) return;
    this.#transferred += moved;
    this.#r._account({ bytesTransferred: moved });
    if (!this.#destinationReports) this.#at(position);
    else this.#startedAt ??= this.#r.now();
  }

  /**
   * Take the blob's offset only from {@link stored} (the destination), never from the source:
   * bytes read but not yet written would otherwise be reported as safe.
   */
  offsetFromDestination(): void {
    this.#destinationReports = true;
  }

  /** The destination now holds `offset` bytes of this blob. */
  stored(offset: number): void {
    if (this.#ended) return;
    this.#destinationReports = true;
    this.#at(offset);
  }

  /** Throttled `downloading`/`uploading` event at `offset`. */
  #at(offset: number): void {
    this.#count();
    const now = this.#r.now();
    this.#startedAt ??= now;
    this.#setOffset(offset);
    // After `committing`, a late byte count (an uploader acknowledging its last write) must not
    // put a "moving" event after it.
    if (this.#committing) return;
    this.#pending = {
      type: this.direction === "download" ? "downloading" : "uploading",
      ...this.#base(),
      offset,
      transferred: this.#transferred,
      startedAt: this.#startedAt,
      updatedAt: now,
    };
    const throttle = this.#r.throttleMs;
    const wait = this.#lastMoveAt + throttle - now;
    if (wait <= 0) {
      this._flush();
    } else if (!this.#timer) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this._flush();
      }, wait);
      this.#timer.unref?.();
    }
  }

  /** A transport retry while moving this blob. */
  retrying(info: { reason: string; delayMs: number; attempt: number; status?: number }): void {
    this._flush();
    this.#r._emitBlob({ type: "retrying", ref: this.ref, digest: this.desc.digest, ...info, time: this.#r.now() });
  }

  /** All bytes are in; the destination verifies and publishes. */
  committing(): void {
    if (this.#ended) return;
    this.#count();
    this.#completeOffset();
    this._flush();
    this.#committing = true;
    this.#r._emitBlob({ type: "committing", ...this.#base() });
  }

  done(): void {
    this.#finish("done");
  }

  /** The destination already had the blob. */
  exists(): void {
    this.#finish("exists");
  }

  mounted(from: string): void {
    this.#finish("mounted", from);
  }

  /** Not transferred on purpose; not counted in the totals. */
  skipped(reason: SkipReason): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#counted) this.#r._account({ blobsTotal: -1, bytesTotal: -this.desc.size, bytesDone: -this.#offset });
    this.#counted = false;
    this.#clearTimer();
    this.#pending = undefined;
    this.#r._emitBlob({ type: "skipped", ...this.#base(), reason });
    this.#r._forget(this);
  }

  /** This blob failed (the operation decides whether that fails the whole transfer). */
  error(err: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    this._flush();
    this.#r._forget(this);
    const error = toFerryError(err);
    this.#r._emitBlob({
      type: "error",
      ref: this.ref,
      digest: this.desc.digest,
      code: error.code,
      message: error.message,
      error,
      time: this.#r.now(),
    });
  }

  #finish(kind: "done" | "exists" | "mounted", from?: string): void {
    if (this.#ended) return;
    this.#count();
    this.#completeOffset();
    this._flush();
    this.#ended = true;
    this.#r._forget(this);
    const existing = kind !== "done";
    this.#r._account({ blobsDone: 1, blobsExisting: existing ? 1 : 0 });
    const base = this.#base();
    if (kind === "done") {
      this.#r._emitBlob({ type: "done", ...base, transferred: this.#transferred, startedAt: this.#startedAt ?? base.time });
    } else if (kind === "mounted") {
      this.#r._emitBlob({ type: "mounted", ...base, from: from ?? "" });
    } else {
      this.#r._emitBlob({ type: "exists", ...base });
    }
  }

  #setOffset(offset: number): void {
    const delta = offset - this.#offset;
    this.#offset = offset;
    if (delta !== 0) this.#r._account({ bytesDone: delta });
  }

  #completeOffset(): void {
    if (this.#offset !== this.desc.size) this.#setOffset(this.desc.size);
  }

  #clearTimer(): void {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }

  /** @internal Deliver the pending (throttled) transfer event now. */
  _flush(): void {
    this.#clearTimer();
    const p = this.#pending;
    if (!p) return;
    this.#pending = undefined;
    this.#lastMoveAt = this.#r.now();
    this.#r._emitBlob(p);
  }
}
