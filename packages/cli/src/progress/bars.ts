/**
 * Live progress bars on a terminal (cli-progress): a totals bar on top and one bar per blob,
 * keyed by the event's `ref`, each replaced in place as its events arrive.
 */
import type { Writable } from "node:stream";
import { MultiBar, type SingleBar } from "cli-progress";
import type { BlobEvent, StatusEvent } from "@ferry/core";
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

  const blob = (e: BlobEvent): void => {
    let bar = bars.get(e.ref);
    const label = shortRef(e.ref).padEnd(LABEL_WIDTH);
    if (!bar) {
      bar = multibar.create(Math.max(1, e.total), 0, { label, state: "", detail: "" });
      bars.set(e.ref, bar);
    }
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
