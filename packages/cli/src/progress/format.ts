/** Human formatting of sizes, rates and durations for progress output. */

const units = ["B", "KiB", "MiB", "GiB", "TiB"];

/** `1536` → `1.5 KiB`. */
export function formatBytes(n: number): string {
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** Decimal megabytes per second, the unit disk and network figures are usually quoted in. */
export function formatRate(bytesPerSecond: number): string {
  return `${(bytesPerSecond / 1e6).toFixed(1)} MB/s`;
}

/** `1234` ms → `1.2 s`, `75000` → `1m15s`. */
export function formatDuration(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
}

/** `layer-sha256:0123…` → `layer-sha256:0123456789ab` (12 hex digits, like docker). */
export function shortRef(ref: string): string {
  const m = /^(.*?)(sha256|sha512):([0-9a-f]{12})[0-9a-f]*$/.exec(ref);
  return m ? `${m[1]}${m[2]}:${m[3]}` : ref;
}
