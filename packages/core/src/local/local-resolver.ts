import type { ContentStore } from "../content.ts";
import { readBlob } from "../content-helpers/read-blob.ts";
import type { Descriptor } from "../descriptor.ts";
import { type Digest, isDigest, parseDigest } from "../digest.ts";
import { InvalidReferenceError, isNotFound, throwIfAborted } from "../errors.ts";
import { MaxManifestBytes } from "../manifest.ts";
import { MediaTypes } from "../media-types.ts";
import type { Fetcher, Pusher, Resolved, Resolver } from "../transport.ts";
import { LocalFetcher } from "./local-fetcher.ts";
import { LocalPusher } from "./local-pusher.ts";

/**
 * Makes a content store (an OCI layout from `@ferry/store-fs`, a memory store, …) a transport:
 * references are the store's names (`index.json` ref names for a layout), or a bare digest
 * (`sha256:…`, optionally after `@`) of a manifest in the store.
 */
export class LocalResolver implements Resolver {
  readonly store: ContentStore;

  constructor(store: ContentStore) {
    this.store = store;
  }

  async resolve(ref: string, options: { signal?: AbortSignal } = {}): Promise<Resolved> {
    throwIfAborted(options.signal);
    if (ref === "") throw new InvalidReferenceError("empty reference");
    const at = ref.lastIndexOf("@");
    const digestPart = at >= 0 ? ref.slice(at + 1) : isDigest(ref) ? ref : undefined;
    if (digestPart !== undefined) {
      const digest = parseDigest(digestPart);
      const info = await this.store.info(digest, options);
      const bytes = await readBlob(this.store, { digest, size: info.size }, { signal: options.signal, maxSize: MaxManifestBytes });
      return { name: ref, descriptor: { mediaType: sniffMediaType(bytes), digest, size: info.size } };
    }
    return { name: ref, descriptor: await this.store.getName(ref) };
  }

  /**
   * Manifests in the store whose `subject` is `digest`. A store keeps no referrers index, so
   * this reads every committed blob small enough to be a manifest: O(store), meant for layouts.
   */
  async referrers(_name: string, digest: Digest, options: { signal?: AbortSignal; artifactType?: string } = {}): Promise<Descriptor[]> {
    return (await this.referrersBySubject(options)).get(digest) ?? [];
  }

  /**
   * Every manifest in the store that has a `subject`, grouped by the subject's digest: one scan of
   * the store's small blobs (what a walk from names misses: signatures and SBOMs stored without a
   * name of their own). `artifactType` keeps only that type.
   */
  async referrersBySubject(options: { signal?: AbortSignal; artifactType?: string } = {}): Promise<Map<Digest, Descriptor[]>> {
    const candidates: Array<{ digest: Digest; size: number }> = [];
    await this.store.walk((info) => {
      if (info.size <= MaxManifestBytes) candidates.push({ digest: info.digest, size: info.size });
    });
    const out = new Map<Digest, Descriptor[]>();
    for (const c of candidates) {
      throwIfAborted(options.signal);
      let bytes: Uint8Array;
      try {
        bytes = await readBlob(this.store, c, { signal: options.signal, maxSize: MaxManifestBytes });
      } catch (err) {
        // Deleted since the walk listed it (another prune, a `content rm`): nothing to refer.
        if (isNotFound(err)) continue;
        throw err;
      }
      // Cheap pre-check before parsing: most blobs are configs or layers.
      if (!Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).includes('"subject"')) continue;
      let doc: { artifactType?: unknown; subject?: { digest?: unknown }; config?: { mediaType?: unknown }; annotations?: Record<string, string> };
      try {
        doc = JSON.parse(new TextDecoder().decode(bytes)) as typeof doc;
      } catch {
        continue;
      }
      const subject = doc.subject?.digest;
      if (typeof subject !== "string" || !isDigest(subject) || subject === c.digest) continue;
      const artifactType = typeof doc.artifactType === "string" ? doc.artifactType : typeof doc.config?.mediaType === "string" ? doc.config.mediaType : undefined;
      if (options.artifactType && artifactType !== options.artifactType) continue;
      const list = out.get(subject) ?? [];
      list.push({
        mediaType: sniffMediaType(bytes),
        digest: c.digest,
        size: c.size,
        ...(artifactType ? { artifactType } : {}),
        ...(doc.annotations ? { annotations: doc.annotations } : {}),
      });
      out.set(subject, list);
    }
    return out;
  }

  async fetcher(_name: string): Promise<Fetcher> {
    return new LocalFetcher(this.store);
  }

  async pusher(_name: string): Promise<Pusher> {
    return new LocalPusher(this.store);
  }
}

/** A store records no media types: read it from the document, else guess from its shape. */
function sniffMediaType(bytes: Uint8Array): string {
  try {
    const doc = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
    if (typeof doc.mediaType === "string") return doc.mediaType;
    if (Array.isArray(doc.manifests)) return MediaTypes.OciIndex;
    if (doc.config !== undefined) return MediaTypes.OciManifest;
  } catch {
    // not JSON: an ordinary blob
  }
  return "application/octet-stream";
}

/** Wrap a store as a resolver, or pass a resolver through. */
export function asResolver(endpoint: Resolver | ContentStore): Resolver {
  return isContentStore(endpoint) ? new LocalResolver(endpoint) : endpoint;
}

/** Duck-typed check: has the store roles rather than the resolver ones. */
export function isContentStore(x: unknown): x is ContentStore {
  const s = x as Partial<ContentStore> | null;
  return (
    typeof s === "object" &&
    s !== null &&
    typeof s.readerAt === "function" &&
    typeof s.writer === "function" &&
    typeof s.getName === "function" &&
    typeof (s as Partial<Resolver>).resolve !== "function"
  );
}

