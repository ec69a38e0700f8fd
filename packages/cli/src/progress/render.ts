/**
 * Show a transfer's status stream: bars on a terminal, lines otherwise, NDJSON with `--json`,
 * nothing with `--quiet`. Subscribes to `status$` and unsubscribes on `stop()`.
 */
import type { Writable } from "node:stream";
import type { Observable } from "rxjs";
import type { StatusEvent } from "@ferry/core";
import { barsRenderer } from "./bars.ts";
import { eventLine } from "./json-lines.ts";
import { plainRenderer } from "./plain.ts";

export type ProgressMode = "tty" | "plain" | "json" | "none";

export interface RenderOptions {
  mode: ProgressMode;
  /** Where bars and lines go (usually stderr). */
  out: Writable;
  /** Where NDJSON goes (usually stdout). Default `out`. */
  jsonOut?: Writable;
}

export interface Rendering {
  /**
   * Stop drawing; `final` (e.g. `"done"`, `"failed"`) is shown as the totals' state on a
   * terminal. The stream's errors are the caller's business: it awaits the operation's `done`.
   */
  stop(final?: string): void;
}

export function renderProgress(status$: Observable<StatusEvent>, options: RenderOptions): Rendering {
  const { mode, out } = options;
  if (mode === "none") return { stop: () => undefined };
  let onEvent: (e: StatusEvent) => void;
  let finish = (_final?: string): void => undefined;
  if (mode === "json") {
    const jsonOut = options.jsonOut ?? out;
    onEvent = (e) => void jsonOut.write(eventLine(e));
  } else if (mode === "plain") {
    onEvent = plainRenderer({ out });
  } else {
    const bars = barsRenderer(out);
    onEvent = (e) => bars.onEvent(e);
    finish = (final) => bars.stop(final);
  }
  const sub = status$.subscribe({ next: onEvent, error: () => undefined });
  let stopped = false;
  return {
    stop(final) {
      if (stopped) return;
      stopped = true;
      sub.unsubscribe();
      finish(final);
    },
  };
}
