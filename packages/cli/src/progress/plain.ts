/**
 * Progress as plain lines, for logs and pipes (no terminal): one line when the reference
 * resolves, one per blob when it finishes, retries and errors as they happen, and the totals
 * at most every few seconds.
 */
import type { Writable } from "node:stream";
import type { StatusEvent } from "@ferry/core";
import { formatBytes, formatDuration, formatRate, shortRef } from "./format.ts";

export interface PlainRendererOptions {
  out: Writable;
  /** Minimum ms between two totals lines. Default 5000. */
  totalsEveryMs?: number;
}

export function plainRenderer(options: PlainRendererOptions): (e: StatusEvent) => void {
  const { out } = options;
  const every = options.totalsEveryMs ?? 5000;
  let lastTotals = Date.now();
  const line = (s: string): void => void out.write(`${s}\n`);
  return (e) => {
    switch (e.type) {
      case "resolved":
        line(`resolved ${e.reference} -> ${e.descriptor.digest} (${e.descriptor.mediaType}, ${formatBytes(e.descriptor.size)})`);
        break;
      case "done":
        line(`${shortRef(e.ref)} done ${formatBytes(e.total)}${e.transferred < e.total ? ` (${formatBytes(e.transferred)} moved)` : ""}`);
        break;
      case "exists":
        line(`${shortRef(e.ref)} exists ${formatBytes(e.total)}`);
        break;
      case "mounted":
        line(`${shortRef(e.ref)} mounted from ${e.from}`);
        break;
      case "skipped":
        line(`${shortRef(e.ref)} skipped (${e.reason})`);
        break;
      case "resumed":
        line(`${shortRef(e.ref)} resuming at ${formatBytes(e.offset)} of ${formatBytes(e.total)}`);
        break;
      case "retrying":
        line(`${e.ref ? `${shortRef(e.ref)} ` : ""}retrying in ${e.delayMs} ms (attempt ${e.attempt}): ${e.reason}`);
        break;
      case "error":
        line(`${e.ref ? `${shortRef(e.ref)} ` : ""}error ${e.code}: ${e.message}`);
        break;
      case "tagged":
        line(`tagged ${e.name} -> ${e.descriptor.digest}`);
        break;
      case "progress": {
        const now = Date.now();
        if (now - lastTotals < every) break;
        lastTotals = now;
        const pct = e.bytesTotal > 0 ? Math.floor((100 * e.bytesDone) / e.bytesTotal) : 0;
        line(
          `${formatBytes(e.bytesDone)}/${formatBytes(e.bytesTotal)} (${pct}%), ${e.blobsDone}/${e.blobsTotal} blobs, ${formatRate(e.rate)}, ${formatDuration(e.elapsedMs)}`,
        );
        break;
      }
      default:
        break;
    }
  };
}
