/**
 * Live progress bars on a terminal (cli-progress): a totals bar on top and one bar per blob,
 * keyed by the event's `ref`, each replaced in place as its events arrive.
 */
import type { Writable } from "node:stream";
import { MultiBar, type SingleBar } from "cli-progress";
import { FinalBlobEventTypes, type BlobEvent, type StatusEvent } from "@ferry/core";
import { formatBytes, formatDuration, formatRate, shortRef } from "./format.ts";

export interface BarsRenderer {
  onEvent(e: StatusEvent): void;
  /** Draw the final state (the totals bar says `final`) and release the terminal. */
  stop(final?: string): void;
}

const LABEL_WIDTH = 28;
const STATE_WIDTH = 11;

export function barsRenderer(out: Writable): BarsRenderer {
  const multibar = new MultiBar({
    stream: out as unknown as NodeJS.WritableStream,
    format: "{label} {state} |{bar}| {detail}",
    barsize: 24,
    hideCursor: true,
    clearOnComplete: false,
    stopOnComplete: false,
    autopadding: false,
    fps: 10,
  });
  const total = multibar.create(1, 0, { label: "total".padEnd(LABEL_WIDTH), state: "resolving".padEnd(STATE_WIDTH), detail: "" });
  const bars = new Map<string, SingleBar>();
  // When the image has more blobs than the screen has lines, a blob that moves takes over the row
  // of the oldest finished blob, else of one still waiting (it gets a row back when it moves).
  // cli-progress cannot remove a row without leaving stale lines, so rows are reused, never removed.
  const finished: string[] = [];
  const waiting = new Set<string>();
  const maxRows = Math.max(4, ((out as { rows?: number }).rows ?? 24) - 2);
  const rowFor = (e: BlobEvent, label: string): SingleBar | undefined => {
    if (bars.size < maxRows) return multibar.create(Math.max(1, e.total), 0, { label, state: "", detail: "" });
    if (e.type === "waiting") return undefined; // nothing to show yet
    const victim = finished.shift() ?? waiting.values().next().value;
    if (victim === undefined) return undefined;
    waiting.delete(victim);
    const bar = bars.get(victim) as SingleBar;
    bars.delete(victim);
    bar.setTotal(Math.max(1, e.total));
    bar.update(0, { label, state: "", detail: "" });
    return bar;
  };

  const blob = (e: BlobEvent): void => {
    let bar = bars.get(e.ref);
    const label = shortRef(e.ref).padEnd(LABEL_WIDTH);
    if (!bar) {
      bar = rowFor(e, label);
      if (!bar) return;
      bars.set(e.ref, bar);
    }
    if (e.type === "waiting") waiting.add(e.ref);
    else waiting.delete(e.ref);
    if (FinalBlobEventTypes.has(e.type) && !finished.includes(e.ref)) finished.push(e.ref);
    let value: number | undefined;
    let detail = formatBytes(e.total);
    switch (e.type) {
      case "downloading":
      case "uploading":
        value = e.offset;
        detail = `${formatBytes(e.offset)}/${formatBytes(e.total)}`;
        break;
      case "resumed":
        value = e.offset;
        detail = `from ${formatBytes(e.offset)}`;
        break;
      case "done":
      case "exists":
      case "mounted":
      case "committing":
        value = e.total;
        break;
      case "skipped":
        detail = e.reason;
        break;
      default:
        break;
    }
    const payload = { label, state: e.type.padEnd(STATE_WIDTH), detail };
    if (value === undefined) bar.update(payload);
    else bar.update(Math.min(value, Math.max(1, e.total)), payload);
  };

  return {
    onEvent(e) {
      switch (e.type) {
        case "resolved":
          total.update({ state: "resolved".padEnd(STATE_WIDTH), detail: `${e.reference} ${shortRef(e.descriptor.digest)}` });
          break;
        case "progress": {
          total.setTotal(Math.max(1, e.bytesTotal));
          const eta = e.etaMs === undefined ? "" : `, eta ${formatDuration(e.etaMs)}`;
          total.update(e.bytesDone, {
            state: "moving".padEnd(STATE_WIDTH),
            detail: `${formatBytes(e.bytesDone)}/${formatBytes(e.bytesTotal)} ${e.blobsDone}/${e.blobsTotal} ${formatRate(e.rate)}${eta}`,
          });
          break;
        }
        case "retrying":
          if (e.ref) bars.get(e.ref)?.update({ state: "retrying".padEnd(STATE_WIDTH), detail: e.reason.slice(0, 60) });
          break;
        case "error":
          if (e.ref) bars.get(e.ref)?.update({ state: "error".padEnd(STATE_WIDTH), detail: e.code });
          break;
        case "resolving":
        case "tagged":
          break;
        default:
          blob(e);
      }
    },
    stop(final) {
      if (final !== undefined) total.update({ state: final.padEnd(STATE_WIDTH) });
      multibar.stop();
    },
  };
}
