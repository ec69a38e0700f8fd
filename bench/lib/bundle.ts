/**
 * Bundle a TypeScript entry (the worker, the embedded registry server) into one ESM file with
 * the esbuild that tsx already depends on, so measured processes run plain JavaScript: no
 * TypeScript loader, no esbuild service process, no compile time in the figures. Falls back to
 * running the entry under tsx when esbuild cannot be found.
 *
 * With `codeCache`, the bundle is CommonJS and runs through the CLI's bin/run-bundle.js, as the
 * `ferry` executable runs its own: compiled from a V8 code cache beside it after the first run.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const runBundleJs = fileURLToPath(new URL("../../packages/cli/bin/run-bundle.js", import.meta.url));
// The CLI's bundle settings and the esbuild it resolves (tsx's): plain JavaScript, so imported by
// URL with its types spelled here.
const cliBundleOptions = new URL("../../packages/cli/scripts/bundle-options.mjs", import.meta.url).href;

interface BundleSettings {
  esbuild: { build(options: Record<string, unknown>): Promise<unknown> };
  bundleOptions(entry: string, outfile: string): Record<string, unknown>;
}

/**
 * A command prefix that runs a bundled entry: `[node, file]`, `[node, run-bundle.js, file]` (with
 * `codeCache`) or `[node, --import, tsx, entry]`.
 */
export async function bundleEntry(entry: string, outDir: string, name: string, { codeCache = false } = {}): Promise<string[]> {
  let settings: BundleSettings;
  try {
    settings = (await import(cliBundleOptions)) as BundleSettings;
  } catch {
    return [process.execPath, "--import", "tsx", entry];
  }
  const { esbuild, bundleOptions } = settings;
  if (codeCache) {
    // Built exactly as `pnpm build` builds the ferry executable's bundle.
    const outfile = join(outDir, `${name}.cjs`);
    await esbuild.build({ ...bundleOptions(entry, outfile), logLevel: "error" });
    return [process.execPath, runBundleJs, outfile];
  }
  const outfile = join(outDir, `${name}.mjs`);
  await esbuild.build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    logLevel: "error",
    // CommonJS dependencies (undici) call require() for node built-ins.
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  });
  return [process.execPath, outfile];
}
