/**
 * Incompressible bytes, fast and optionally reproducible: AES-128-CTR over zeros (AES-NI makes it
 * run at GB/s), keyed from a seed so the same seed yields the same bytes and digests.
 */
import { createCipheriv, createHash, randomBytes } from "node:crypto";

const CHUNK = 1 << 20;
const ZEROS = Buffer.alloc(CHUNK);

/** A key derived from `seed` and a label (e.g. `"layer/0/1"`), or a random one without a seed. */
function keyFor(seed: string | number | undefined, label: string): Buffer {
  if (seed === undefined) return randomBytes(32);
  return createHash("sha256").update(`ferry-testkit:${String(seed)}:${label}`).digest();
}

/**
 * `size` pseudo-random bytes in chunks of at most 1 MiB. With a `seed`, the output depends only
 * on (seed, label, size); without one it is fresh each call.
 */
export async function* randomStream(size: number, seed?: string | number, label = ""): AsyncGenerator<Buffer> {
  const key = keyFor(seed, label);
  const cipher = createCipheriv("aes-128-ctr", key.subarray(0, 16), key.subarray(16, 32));
  let left = size;
  while (left > 0) {
    const n = Math.min(left, CHUNK);
    yield cipher.update(n === CHUNK ? ZEROS : ZEROS.subarray(0, n));
    left -= n;
  }
}
