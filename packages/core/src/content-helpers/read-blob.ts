import type { Provider } from "../content.ts";
import type { Descriptor } from "../descriptor.ts";
import { InvalidArgumentError, SizeMismatchError } from "../errors.ts";

export interface ReadBlobOptions {
  signal?: AbortSignal;
  /** Largest blob this will buffer, in bytes. Default 4 MiB (what registries allow for manifests). */
  maxSize?: number;
}

export const DefaultReadBlobMaxSize = 4 * 1024 * 1024;

/**
 * Read a small committed document (manifest, index, config) into memory. Refuses with
 * `InvalidArgument` when the descriptor or the stored blob is larger than `maxSize`; throws
 * `SizeMismatch` when the stored blob's size differs from `desc.size`.
 */
export async function readBlob(
  provider: Provider,
  desc: Pick<Descriptor, "digest" | "size">,
  options: ReadBlobOptions = {},
): Promise<Uint8Array> {
  const maxSize = options.maxSize ?? DefaultReadBlobMaxSize;
  const tooBig = (n: number): InvalidArgumentError =>
    new InvalidArgumentError(`blob ${desc.digest} is ${n} bytes, over the ${maxSize}-byte limit for documents read into memory`, {
      details: { digest: desc.digest, size: n, maxSize },
    });
  if (desc.size > maxSize) throw tooBig(desc.size);
  const ra = await provider.readerAt(desc, { signal: options.signal });
  try {
    if (ra.size > maxSize) throw tooBig(ra.size);
    if (ra.size !== desc.size) {
      throw new SizeMismatchError(`blob ${desc.digest} is ${ra.size} bytes, descriptor says ${desc.size}`, {
        details: { digest: desc.digest, size: ra.size, expected: desc.size },
      });
    }
    const data = await ra.read(0, ra.size);
    if (data.byteLength !== ra.size) {
      throw new SizeMismatchError(`short read of ${desc.digest}: ${data.byteLength} of ${ra.size} bytes`, {
        details: { digest: desc.digest },
      });
    }
    return data;
  } finally {
    await ra.close();
  }
}
