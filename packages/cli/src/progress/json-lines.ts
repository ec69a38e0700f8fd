import type { StatusEvent, TransferResult } from "@ferry/core";

/**
 * One NDJSON line for a status event. An `error` event carries the error object, which is
 * replaced by its code, message and details (JSON has no place for a class or a stack).
 */
export function eventLine(e: StatusEvent): string {
  if (e.type === "error") {
    const { error, ...rest } = e;
    return `${JSON.stringify({ ...rest, details: error.details })}\n`;
  }
  return `${JSON.stringify(e)}\n`;
}

/** The last line of a successful `--json` transfer: `{"type":"result",root,name,totals}`. */
export function resultLine(r: TransferResult): string {
  return `${JSON.stringify({ type: "result", ...r })}\n`;
}
