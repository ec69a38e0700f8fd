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
  /** Stop drawing (the stream's errors are the caller's business: it awaits `done`). */
  stop(): void;
}

export function renderProgress(status$: Observable<StatusEvent>, options: RenderOptions): Rendering {
  const { mode, out } = options;
  if (mode === "none") return { stop: () => undefined };
  let onEvent: (e: StatusEvent) => void;
  let finish = (): void => undefined;
  if (mode === "json") {
    const jsonOut = options.jsonOut ?? out;
    onEvent = (e) => void jsonOut.write(eventLine(e));
  } else if (mode === "plain") {
    onEvent = plainRenderer({ out });
  } else {
    const bars = barsRenderer(out);
    onEvent = (e) => bars.onEvent(e);
    finish = () => bars.stop();
  }
  const sub = status$.subscribe({ next: onEvent, error: () => undefined });
  let stopped = false;
  return {
    stop() {
      if (stopped) return;
      stopped = true;
      sub.unsubscribe();
      finish();
    },
  };
}
