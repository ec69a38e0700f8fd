import { pipeline } from "node:stream";
import type { Provider, ReaderAt } from "../content.ts";
import type { Descriptor } from "../descriptor.ts";
import { throwIfAborted } from "../errors.ts";
import type { FetchOptions, FetchStream, Fetcher } from "../transport.ts";
import { verifyStream } from "./verify-stream.ts";

/**
 * A {@link Fetcher} over a content store: reads committed blobs, honouring `offset` exactly
 * (stores have random access, so `rangeIgnored` is never set). A read from 0 is verified against
 * the descriptor, so on-disk corruption surfaces as `DigestMismatch`.
 */
export class LocalFetcher implements Fetcher {
  readonly #provider: Provider;

  constructor(provider: Provider) {
    this.#provider = provider;
  }

  /** `verify: false` skips the hash of a read from 0 (for a destination that verifies anyway). */
  async fetch(desc: Descriptor, options: FetchOptions & { verify?: boolean } = {}): Promise<FetchStream> {
    throwIfAborted(options.signal);
    const offset = options.offset ?? 0;
    const ra = await this.#provider.readerAt(desc, { signal: options.signal });
    const raw = ra.createReadStream({ offset: Math.min(offset, ra.size), signal: options.signal });
    const close = (): void => void ra.close().catch(() => undefined);
    if (offset > 0 || options.verify === false) {
      raw.once("close", close);
      return raw;
    }
    const verified = verifyStream(desc);
    pipeline(raw, verified, close);
    return verified;
  }

  readerAt(desc: Descriptor, options: FetchOptions = {}): Promise<ReaderAt> {
    return this.#provider.readerAt(desc, { signal: options.signal });
  }
}
