/**
 * Machine limits, measured in the same run as the cases (the shared machine's load changes over
 * the day): `curl` of one blob to a file and to /dev/null, `dd` of the same size with fsync, and
 * node:crypto sha256 over the same size. Medians of `rounds` runs.
 */
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { median } from "./contest.ts";
import type { Limits } from "./cases.ts";
import { measure } from "./measure.ts";

const SHA_SCRIPT = `
const { createHash, randomFillSync } = require("node:crypto");
const size = Number(process.argv[1]);
const buf = randomFillSync(Buffer.allocUnsafe(1 << 20));
const h = createHash("sha256");
const t0 = performance.now();
for (let n = 0; n < size; n += buf.length) h.update(n + buf.length <= size ? buf : buf.subarray(0, size - n));
h.digest("hex");
process.stdout.write(String(size / 1e6 / ((performance.now() - t0) / 1000)));
`;

export async function measureLimits(scratch: string, blobUrl: string, bytes: number, rounds: number, log: (s: string) => void): Promise<Limits> {
  const file = join(scratch, "limit.bin");
  const curlFile: number[] = [];
  const curlNull: number[] = [];
  const dd: number[] = [];
  const sha: number[] = [];
  const mib = Math.max(1, Math.round(bytes / 2 ** 20));
  for (let r = 0; r < rounds; r++) {
    const a = await measure(["curl", "-s", "-f", "-o", file, blobUrl], scratch);
    curlFile.push(bytes / 1e6 / a.wallS);
    await rm(file, { force: true });
    const b = await measure(["curl", "-s", "-f", "-o", "/dev/null", blobUrl], scratch);
    curlNull.push(bytes / 1e6 / b.wallS);
    const c = await measure(["dd", "if=/dev/zero", `of=${file}`, "bs=1M", `count=${mib}`, "conv=fsync", "status=none"], scratch);
    dd.push((mib * 2 ** 20) / 1e6 / c.wallS);
    await rm(file, { force: true });
    const d = await measure([process.execPath, "-e", SHA_SCRIPT, String(bytes)], scratch);
    sha.push(Number(d.stdout));
    log(
      `  limits run ${r + 1}/${rounds}: curl→file ${curlFile.at(-1)!.toFixed(0)}, curl→null ${curlNull.at(-1)!.toFixed(0)}, ` +
        `dd fsync ${dd.at(-1)!.toFixed(0)}, sha256 ${sha.at(-1)!.toFixed(0)} MB/s`,
    );
  }
  return { curlFileMBps: median(curlFile), curlNullMBps: median(curlNull), ddFsyncMBps: median(dd), sha256MBps: median(sha), bytes };
}
