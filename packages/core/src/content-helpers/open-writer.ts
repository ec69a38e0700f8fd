import type { Ingester, Writer, WriterOptions } from "../content.ts";
import { isLocked, throwIfAborted } from "../errors.ts";
import { sleep } from "./sleep.ts";

export interface OpenWriterOptions extends WriterOptions {
  /** First wait after a `Locked` answer, in ms. Default 16. */
  minDelayMs?: number;
  /** Ceiling of the doubling wait, in ms. Default 2000. */
  maxDelayMs?: number;
  /** Called before each wait, e.g. to report "waiting for another pull of this blob". */
  onLocked?(info: { ref: string; attempt: number; delayMs: number }): void;
}

/**
 * Open a writer on `ingester`, waiting while another writer holds the ref. `Locked` is retried
 * with jittered exponential backoff (16 ms doubling to 2 s) until `signal` aborts, which throws
 * `Aborted`; without a signal it waits as long as the lock is held. Every other error (notably
 * `AlreadyExists` and `FailedPrecondition`) is thrown at once.
 */
export async function openWriter(ingester: Ingester, options: OpenWriterOptions): Promise<Writer> {
  const { minDelayMs = 16, maxDelayMs = 2000, onLocked, ...writerOptions } = options;
  const signal = options.signal;
  let delay = Math.max(1, minDelayMs);
  for (let attempt = 1; ; attempt++) {
    throwIfAborted(signal);
    try {
      return await ingester.writer(writerOptions);
    } catch (err) {
      if (!isLocked(err)) throw err;
    }
    // Jitter in [delay/2, delay): concurrent waiters on one ref do not retry in lockstep.
    const wait = Math.round(delay / 2 + (Math.random() * delay) / 2);
    onLocked?.({ ref: options.ref, attempt, delayMs: wait });
    await sleep(wait, signal);
    delay = Math.min(delay * 2, maxDelayMs);
  }
}
