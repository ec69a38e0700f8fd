/**
 * Push a directory as an OCI artifact: each regular file becomes a layer (titled with its name),
 * the config is the empty descriptor, and the manifest carries an `artifactType`. Files are
 * streamed twice (once to hash, once to upload) and never held in memory. Uses the transport
 * contract directly: a `Pusher` from the registry resolver.
 *
 *   pnpm exec tsx examples/push-artifact.ts [DIR REF] [--artifact-type TYPE]
 *
 * Without arguments a few files are generated and pushed to a local registry.
 */
import { createReadStream } from "node:fs";
import { mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { digestOf, digestStream, MediaTypes, type Descriptor, type PushOutcome } from "@ferry/core";
import { createRegistryResolver, parseReference } from "@ferry/fetcher";
import { flag, isMain, positionals, startLocalRegistry } from "./lib/setup.ts";

export const DefaultArtifactType = "application/vnd.ferry.example.directory.v1";
const FileMediaType = "application/vnd.ferry.example.file.v1";

export interface PushedArtifact {
  manifest: Descriptor;
  layers: Descriptor[];
  outcomes: Record<string, PushOutcome>;
}

export async function pushDirectory(dir: string, ref: string, artifactType = DefaultArtifactType, signal?: AbortSignal): Promise<PushedArtifact> {
  const resolver = createRegistryResolver();
  try {
    const r = parseReference(ref);
    const pusher = await resolver.pusher(r.name);
    const outcomes: Record<string, PushOutcome> = {};

    // 1. Each file a layer: hash it first (streaming), then let the pusher open it as often as it needs.
    const layers: Descriptor[] = [];
    for (const name of (await readdir(dir)).sort()) {
      const path = join(dir, name);
      if (!(await stat(path)).isFile()) continue;
      const { digest, size } = await digestStream(createReadStream(path, signal ? { signal } : {}));
      const desc: Descriptor = { mediaType: FileMediaType, digest, size, annotations: { "org.opencontainers.image.title": name } };
      outcomes[name] = await pusher.push(desc, { open: (offset = 0) => createReadStream(path, { start: offset, ...(signal ? { signal } : {}) }) }, signal ? { signal } : {});
      layers.push(desc);
    }

    // 2. The empty config, as the OCI artifact guidance says.
    const emptyBytes = Buffer.from("{}");
    const config: Descriptor = { mediaType: MediaTypes.OciEmpty, digest: digestOf(emptyBytes), size: emptyBytes.length };
    outcomes.config = await pusher.push(config, { open: () => Readable.from([emptyBytes]) }, signal ? { signal } : {});

    // 3. The manifest last, under the tag.
    const manifestBytes = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaTypes.OciManifest,
        artifactType,
        config,
        layers,
        annotations: { "org.opencontainers.image.created": new Date().toISOString() },
      }),
    );
    const manifest: Descriptor = { mediaType: MediaTypes.OciManifest, digest: digestOf(manifestBytes), size: manifestBytes.length, artifactType };
    outcomes.manifest = await pusher.push(manifest, { open: () => Readable.from([manifestBytes]) }, { ...(r.tag ? { tag: r.tag } : {}), ...(signal ? { signal } : {}) });
    return { manifest, layers, outcomes };
  } finally {
    await resolver.close();
  }
}

if (isMain(import.meta.url)) {
  const args = process.argv.slice(2);
  const [dirArg, refArg] = positionals(args, ["--artifact-type"]);
  const registry = refArg === undefined ? await startLocalRegistry() : undefined;
  const tmp = dirArg === undefined ? await mkdtemp(join(tmpdir(), "ferry-artifact-")) : undefined;
  try {
    if (tmp) {
      await writeFile(join(tmp, "README.txt"), "pushed by ferry's push-artifact example\n");
      await writeFile(join(tmp, "data.bin"), Buffer.alloc(256 * 1024, 7));
    }
    const ref = refArg ?? `${registry?.host}/example/artifact:1`;
    const pushed = await pushDirectory(dirArg ?? (tmp as string), ref, flag(args, "--artifact-type"));
    for (const [what, outcome] of Object.entries(pushed.outcomes)) console.log(`${what}: ${outcome}`);
    console.log(`pushed ${ref} ${pushed.manifest.digest} (${pushed.layers.length} files, artifactType ${pushed.manifest.artifactType})`);
  } finally {
    if (tmp) await rm(tmp, { recursive: true, force: true });
    await registry?.close();
  }
}
