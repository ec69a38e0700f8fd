import { setMaxListeners } from "node:events";
import { abortError, InvalidArgumentError, isAborted } from "../errors.ts";
import type { TransferResult } from "../status/events.ts";
import type { TransferOperation } from "../status/operation.ts";
import { StatusReporter } from "../status/reporter.ts";
import { failedBlob } from "./transfer-graph.ts";

export interface OperationOptions {
  signal?: AbortSignal;
  throttleMs?: number;
}

/**
 * Start `body` on the next microtask (so a caller can subscribe first) and wrap it in a
 * {@link TransferOperation} handle.
 */
export function runOperation(
  options: OperationOptions,
  body: (reporter: StatusReporter, signal: AbortSignal) => Promise<Omit<TransferResult, "totals">>,
): TransferOperation {
  const t = options.throttleMs;
  // NaN or Infinity would reach setInterval as 1 ms (Node's fallback): a heartbeat per millisecond.
  const badThrottle = t !== undefined && !(Number.isFinite(t) && t >= 0);
  const reporter = new StatusReporter({ throttleMs: badThrottle ? undefined : t });
  const controller = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, controller.signal]) : controller.signal;
  // The walk adds its own listener per branch (see dispatch); allow for them without warnings.
  setMaxListeners(100, signal);
  queueMicrotask(() => {
    (async () => {
      try {
        if (badThrottle) throw new InvalidArgumentError(`throttleMs must be a finite number of milliseconds ≥ 0, got ${String(t)}`, { details: { throttleMs: String(t) } });
        reporter.complete(await body(reporter, signal));
      } catch (err) {
        // A cancelled operation fails with Aborted, not with whatever the abort broke first.
        const aborted = signal.aborted && isAborted(err);
        const cause = aborted ? abortError(signal) : err;
        const blob = !aborted && typeof err === "object" && err !== null ? failedBlob.get(err) : undefined;
        reporter.fail(cause, blob ? { ref: blob.ref, digest: blob.desc.digest } : undefined);
      }
    })();
  });
  return {
    status$: reporter.status$,
    events: reporter.events,
    done: reporter.done,
    cancel: (reason?: unknown) => controller.abort(reason),
  };
}
