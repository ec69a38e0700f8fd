/**
 * `zero-copy-get URL FILE`: the benchmark's measure of what a blob GET could cost without
 * copies — not ferry's code path, a ceiling for it (case 3's "zero-copy-get" contender).
 *
 * One plain-HTTP GET on a raw socket whose reads land straight in page-aligned 1 MiB batches
 * (`net.connect`'s `onread` with a buffer function: no undici parser copy, no staging copy,
 * one chunk per read of up to 1 MiB), sha256 over the batch in place, each full batch written
 * with O_DIRECT while the other one fills, one fsync at the end; the digest in the URL is
 * checked (exit 1 on a mismatch). Only what a benchmark needs: a 200 with Content-Length, no
 * redirects, auth or retries.
 */
import { createHash } from "node:crypto";
import { constants } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { connect } from "node:net";

declare const WebAssembly: { Memory: new (d: { initial: number; maximum: number }) => { buffer: ArrayBuffer } };

const BATCH = 1024 * 1024;
/** Page-aligned memory (a WebAssembly memory), as O_DIRECT requires. */
const aligned = (): Buffer => Buffer.from(new WebAssembly.Memory({ initial: BATCH / 65536, maximum: BATCH / 65536 }).buffer, 0, BATCH);

async function main(url: URL, file: string): Promise<void> {
  const direct = await open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_DIRECT, 0o644);
  const buffered = await open(file, "r+");
  const hash = createHash("sha256");
  let cur = aligned();
  let spare = aligned();
  let fill = 0;
  let pos = 0;
  let remaining = -1;
  let inflight: Promise<void> = Promise.resolve();
  let finished!: () => void;
  let failed!: (err: Error) => void;
  const done = new Promise<void>((resolve, reject) => ((finished = resolve), (failed = reject)));

  const writeOut = (fh: FileHandle, buf: Buffer, len: number, at: number): Promise<void> =>
    fh.write(buf, 0, len, at).then(({ bytesWritten }) => {
      if (bytesWritten !== len) throw new Error(`short write ${bytesWritten} of ${len}`);
    });

  const socket = connect({
    host: url.hostname,
    port: Number(url.port || 80),
    onread: {
      buffer: () => cur.subarray(fill),
      callback: (n: number): boolean => {
        let from = fill;
        fill += n;
        if (remaining < 0) {
          const end = cur.subarray(0, fill).indexOf("\r\n\r\n");
          if (end < 0) return true;
          const head = cur.subarray(0, end).toString("latin1");
          const status = /^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1];
          const length = /\r\ncontent-length: *(\d+)/i.exec(head)?.[1];
          if (status !== "200" || length === undefined) {
            failed(new Error(`unexpected response: ${head.split("\r\n")[0]} (content-length ${length ?? "absent"})`));
            return false;
          }
          remaining = Number(length);
          cur.copyWithin(0, end + 4, fill);
          fill -= end + 4;
          from = 0;
        }
        hash.update(cur.subarray(from, fill));
        remaining -= fill - from;
        if (fill < BATCH && remaining > 0) return true;
        // Hand the batch to the thread pool; fill the other one once its previous write is done.
        const batch = cur;
        const len = fill;
        const at = pos;
        const previous = inflight;
        inflight = previous.then(() => writeOut(len % 4096 === 0 ? direct : buffered, batch, len, at));
        pos += len;
        fill = 0;
        cur = spare;
        spare = batch;
        if (remaining === 0) {
          inflight.then(finished, failed);
          return false;
        }
        // Reading on into `cur` must wait until its last write (the previous batch) is done.
        previous.then(
          () => socket.resume(),
          (err: Error) => failed(err),
        );
        return false;
      },
    },
  });
  socket.on("error", (err) => failed(err));
  socket.on("connect", () => socket.write(`GET ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nUser-Agent: ferry-bench\r\n\r\n`));
  try {
    await done;
    await direct.sync();
  } finally {
    socket.destroy();
    await direct.close();
    await buffered.close();
  }
  const digest = `sha256:${hash.digest("hex")}`;
  if (!url.pathname.endsWith(digest)) throw new Error(`digest mismatch: got ${digest} for ${url.pathname}`);
}

const [u, f] = process.argv.slice(2);
if (u === undefined || f === undefined) {
  process.stderr.write("usage: zero-copy-get URL FILE\n");
  process.exit(2);
}
await main(new URL(u), f).catch((err: unknown) => {
  process.stderr.write(`zero-copy-get: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
