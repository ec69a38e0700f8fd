import { InvalidArgumentError } from "@ferry/core";

const unitMs: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `90s`, `10m`, `24h`, `7d`, `250ms` or a bare number of seconds → milliseconds. */
export function parseDuration(text: string, option: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m) throw new InvalidArgumentError(`${option} must be a duration like 30s, 10m, 24h or 7d, got ${JSON.stringify(text)}`);
  return Math.round(Number(m[1]) * (unitMs[m[2] ?? "s"] as number));
}
