/**
 * make-image CLI (run through scripts/make-image.sh): build a random image and push it with
 * skopeo. Prints eval-able `KEY=value` lines on stdout; progress and errors go to stderr.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { FerryError, InvalidArgumentError } from "@ferry/core";
import { buildImage, type ImageFormat, type LayerCompression } from "./build-image.ts";
import { pushImage } from "./skopeo.ts";

const USAGE = `usage: make-image.sh [options] REGISTRY REPO:TAG LAYERS SIZE

  REGISTRY   host:port of a plain-HTTP registry, e.g. 127.0.0.1:5000 (ignored with --no-push)
  REPO:TAG   e.g. demo:1 or team/app:v2
  LAYERS     layers per platform image (>= 1)
  SIZE       random bytes per layer: N (MiB), NK (KiB), NM, NG, or NB (bytes)

options:
  --index                 two-platform index (linux/amd64, linux/arm64)
  --platforms LIST        comma-separated os/arch[/variant]; more than one builds an index
  --format oci|docker     OCI (default) or Docker schema 2 media types
  --compression gzip|none layer compression (default gzip, level 1)
  --gzip-level N          zlib level 0-9 (default 1; 0 is ~25x faster, same size on random data)
  --seed S                reproducible content: same seed and sizes -> same digests
  --layout DIR            keep the OCI layout in DIR (must be empty or absent)
  --no-push               build only (needs --layout)
  --user USER:PASSWORD    registry credentials for the push
  -h, --help

prints: IMAGE=HOST/REPO:TAG DIGEST=sha256:... MEDIA_TYPE=... [LAYOUT=DIR SOURCE=oci:DIR:TAG]`;

/** `8` → 8 MiB, `64K` → 64 KiB, `3M`, `1G`, `100B` → bytes. */
export function parseSize(s: string): number {
  const m = /^(\d+)([BKMG]?)$/i.exec(s);
  if (!m) throw new InvalidArgumentError(`bad SIZE ${JSON.stringify(s)}: want N (MiB) or NK/NM/NG/NB`);
  const unit = (m[2] ?? "").toUpperCase();
  const mult = unit === "B" ? 1 : unit === "K" ? 1024 : unit === "G" ? 1024 ** 3 : 1024 ** 2;
  return Number(m[1]) * mult;
}

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      index: { type: "boolean" },
      platforms: { type: "string" },
      format: { type: "string", default: "oci" },
      compression: { type: "string", default: "gzip" },
      seed: { type: "string" },
      "gzip-level": { type: "string", default: "1" },
      layout: { type: "string" },
      "no-push": { type: "boolean" },
      user: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE + "\n");
    return 0;
  }
  if (positionals.length !== 4) {
    process.stderr.write(USAGE + "\n");
    return 2;
  }
  const [registry, repoTag, layersArg, sizeArg] = positionals as [string, string, string, string];
  const colon = repoTag.lastIndexOf(":");
  if (colon <= 0 || repoTag.slice(colon + 1).includes("/")) throw new InvalidArgumentError(`REPO:TAG needs a tag: ${repoTag}`);
  const tag = repoTag.slice(colon + 1);
  const layers = Number(layersArg);
  if (!Number.isInteger(layers) || layers < 1) throw new InvalidArgumentError(`LAYERS must be an integer >= 1: ${layersArg}`);
  const layerSize = parseSize(sizeArg);
  if (values.format !== "oci" && values.format !== "docker") throw new InvalidArgumentError("--format must be oci or docker");
  if (values.compression !== "gzip" && values.compression !== "none") throw new InvalidArgumentError("--compression must be gzip or none");
  const push = !values["no-push"];
  if (!push && values.layout === undefined) throw new InvalidArgumentError("--no-push needs --layout DIR");
  const platforms = values.platforms?.split(",") ?? (values.index ? ["linux/amd64", "linux/arm64"] : ["linux/amd64"]);
  let creds: { username: string; password: string } | undefined;
  if (values.user !== undefined) {
    const i = values.user.indexOf(":");
    if (i <= 0) throw new InvalidArgumentError("--user needs USER:PASSWORD");
    creds = { username: values.user.slice(0, i), password: values.user.slice(i + 1) };
  }

  const ac = new AbortController();
  process.once("SIGINT", () => ac.abort());
  const temp = values.layout === undefined ? await mkdtemp(join(tmpdir(), "ferry-make-image-")) : undefined;
  const dir = values.layout !== undefined ? resolve(values.layout) : join(temp!, "layout");
  try {
    const started = Date.now();
    const built = await buildImage({
      dir,
      layers,
      layerSize,
      platforms,
      format: values.format as ImageFormat,
      compression: values.compression as LayerCompression,
      name: tag,
      gzipLevel: Number(values["gzip-level"]),
      signal: ac.signal,
      ...(values.seed !== undefined ? { seed: values.seed } : {}),
    });
    process.stderr.write(`built ${built.layers.length} layer(s) in ${Date.now() - started} ms\n`);
    const out: string[] = [];
    if (push) {
      const t = Date.now();
      await pushImage(dir, tag, registry, repoTag, { signal: ac.signal, ...(creds ? { creds } : {}) });
      process.stderr.write(`pushed ${registry}/${repoTag} in ${Date.now() - t} ms\n`);
      out.push(`IMAGE=${registry}/${repoTag}`);
    }
    out.push(`DIGEST=${built.root.digest}`, `MEDIA_TYPE=${built.root.mediaType}`);
    if (temp === undefined) out.push(`LAYOUT=${dir}`, `SOURCE=oci:${dir}:${tag}`);
    process.stdout.write(out.join("\n") + "\n");
    return 0;
  } finally {
    if (temp !== undefined) await rm(temp, { recursive: true, force: true });
  }
}

// Run when executed directly (tsx packages/testkit/src/cli.ts …), not when imported by tests.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      const msg = e instanceof FerryError ? `${e.code}: ${e.message}` : e instanceof Error ? e.message : String(e);
      process.stderr.write(`make-image: ${msg}\n`);
      process.exit(1);
    },
  );
}
