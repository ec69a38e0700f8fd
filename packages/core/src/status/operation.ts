/**
 * The handle every transfer operation returns: an RxJS stream, an event emitter and a promise,
 * three views of the same events so callers pick the style they like.
 */
import type { EventEmitter } from "eventemitter3";
import type { Observable } from "rxjs";
import type { FerryError } from "../errors.ts";
import type { StatusEvent, StatusEventType, TransferResult } from "./events.ts";

/**
 * Events of {@link TransferOperation.events}: each status event under its own `type` and under
 * `status`; `end` once with the result on success, `fail` once with the error on failure.
 */
export type StatusEventMap = {
  [K in StatusEventType]: [Extract<StatusEvent, { type: K }>];
} & {
  status: [StatusEvent];
  end: [TransferResult];
  fail: [FerryError];
};

export interface TransferOperation {
  /**
   * Multicast stream of status events. A late subscriber first receives the latest state of each
   * ref (and the latest `resolved`/`progress`), not the whole history. Completes when the
   * operation succeeds, errors with the operation's error when it fails.
   */
  readonly status$: Observable<StatusEvent>;
  /** The same events for callback users. */
  readonly events: EventEmitter<StatusEventMap>;
  /** Resolves with the result, rejects with the operation's (typed) error. */
  readonly done: Promise<TransferResult>;
  /** Cancel the operation (the same as aborting the caller's signal). */
  cancel(reason?: unknown): void;
}
