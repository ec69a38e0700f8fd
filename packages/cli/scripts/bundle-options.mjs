// The esbuild settings of ferry's CommonJS bundles, shared by `pnpm build` (scripts/bundle.mjs)
// and the benchmark's worker (bench/lib/bundle.ts), so the benchmark measures a process built
// the way the `ferry` executable is.
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(join(pkgDir, "package.json"));

/** The esbuild of tsx (a dependency already; no second copy). */
export const esbuild = createRequire(require.resolve("tsx/package.json"))("esbuild");

/**
 * Options for esbuild.build() bundling `entry` into the CommonJS file `outfile`.
 *
 * - CommonJS because bin/run-bundle.js compiles it with vm.Script, the one API of Node 20 that
 *   takes a V8 code cache; import.meta.url becomes the bundle's own file URL.
 * - rxjs from its ES module build: under the "node" condition esbuild takes rxjs's CommonJS
 *   build, whose index loads all ~200 operators at start (24 ms measured, bundled); the ES
 *   build (sideEffects: false) is tree-shaken to what ferry imports (3 ms).
 */
export function bundleOptions(entry, outfile) {
  return {
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node20",
    logLevel: "warning",
    alias: { rxjs: join(dirname(require.resolve("rxjs/package.json")), "dist", "esm", "index.js") },
    define: { "import.meta.url": "__ferryImportMetaUrl" },
    banner: { js: 'const __ferryImportMetaUrl = require("node:url").pathToFileURL(__filename).href;' },
  };
}
