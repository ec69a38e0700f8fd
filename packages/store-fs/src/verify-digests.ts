/**
 * The digest check every commit makes: the ingest's own digest against each digest the caller or
 * the ingest's opener expected. A wanted digest of another algorithm is computed on demand.
 */
import { DigestMismatchError, digestAlgorithm, type Digest, type DigestAlgorithm } from "@ferry/core";

/**
 * The digest to publish under (the last wanted one, else `own`); `DigestMismatch` when the
 * content does not hash to a wanted digest.
 */
export async function verifyDigests(
  ref: string,
  own: { digest: Digest; algorithm: DigestAlgorithm },
  wanted: Array<Digest | undefined>,
  hashWith: (algorithm: DigestAlgorithm) => Promise<Digest>,
): Promise<Digest> {
  let result = own.digest;
  for (const want of wanted) {
    if (want === undefined) continue;
    const alg = digestAlgorithm(want);
    const actual = alg === own.algorithm ? own.digest : await hashWith(alg);
    if (actual !== want) {
      throw new DigestMismatchError(`ingest ${JSON.stringify(ref)} has digest ${actual}, expected ${want}`, {
        details: { ref, digest: actual, expected: want },
      });
    }
    result = want;
  }
  return result;
}
