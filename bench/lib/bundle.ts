/**
 * Bundle a TypeScript entry (the worker, the embedded registry server) into one ESM file with
 * the esbuild that tsx already depends on, so measured processes run plain JavaScript: no
 * TypeScript loader, no esbuild service process, no compile time in the figures. Falls back to
 * running the entry under tsx when esbuild cannot be found.
 *
 * With `codeCache`, the bundle is CommonJS and runs through the CLI's bin/run-bundle.js, as the
 * `ferry` executable runs its own: compiled from a V8 code cache beside it after the first run.
 */
import { createRequire } from "node:module";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const runBundleJs = fileURLToPath(new URL("../../packages/cli/bin/run-bundle.js", import.meta.url));
// The CLI's own bundle settings (plain JavaScript, so imported by URL with its type spelled here).
const cliBundleOptions = new URL("../../packages/cli/scripts/bundle-options.mjs", import.meta.url).href;
type BundleOptions = (entry: string, outfile: string) => Record<string, unknown>;

interface EsbuildApi {
  build(options: Record<string, unknown>): Promise<unknown>;
}

/**
 * A command prefix that runs a bundled entry: `[node, file]`, `[node, run-bundle.js, file]` (with
 * `codeCache`) or `[node, --import, tsx, entry]`.
 */
export async function bundleEntry(entry: string, outDir: string, name: string, { codeCache = false } = {}): Promise<string[]> {
  let esbuild: EsbuildApi;
  try {
    const req = createRequire(createRequire(import.meta.url).resolve("tsx/package.json"));
    esbuild = req("esbuild") as EsbuildApi;
  } catch {
    return [process.execPath, "--import", "tsx", entry];
  }
  if (codeCache) {
    // Built exactly as `pnpm build` builds the ferry executable's bundle.
    const outfile = join(outDir, `${name}.cjs`);
    const { bundleOptions } = (await import(cliBundleOptions)) as { bundleOptions: BundleOptions };
    await esbuild.build({ ...bundleOptions(entry, outfile), logLevel: "error" });
    return [process.execPath, runBundleJs, outfile];
  }
  const outfile = join(outDir, `${name}.mjs`);
  await esbuild.build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: "node",
    target: "node20",
    logLevel: "error",
    format: "esm",
    // CommonJS dependencies (undici) call require() for node built-ins.
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  });
  return [process.execPath, outfile];
}
