import { Transform, type TransformCallback } from "node:stream";
import type { Descriptor } from "../descriptor.ts";
import { createDigester, digestAlgorithm } from "../digest.ts";
import { DigestMismatchError, SizeMismatchError } from "../errors.ts";

/**
 * A pass-through that hashes and counts the bytes and errors at the end (or as soon as there are
 * too many bytes) when they do not match `desc`. Used for streams that start at offset 0.
 */
export function verifyStream(desc: Pick<Descriptor, "digest" | "size">): Transform {
  const digester = createDigester(digestAlgorithm(desc.digest));
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      seen += chunk.byteLength;
      if (seen > desc.size) {
        cb(new SizeMismatchError(`${desc.digest}: more than the expected ${desc.size} bytes`, { details: { digest: desc.digest, size: desc.size } }));
        return;
      }
      digester.update(chunk);
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      if (seen !== desc.size) {
        cb(new SizeMismatchError(`${desc.digest}: got ${seen} bytes, expected ${desc.size}`, { details: { digest: desc.digest, size: desc.size, got: seen } }));
        return;
      }
      const got = digester.digest();
      if (got !== desc.digest) {
        cb(new DigestMismatchError(`content has digest ${got}, expected ${desc.digest}`, { details: { digest: desc.digest, got } }));
        return;
      }
      cb();
    },
  });
}
