#!/usr/bin/env node
// Bundle the `ferry` command (src/main.ts and the workspace packages it imports) into one plain
// JavaScript file, dist/ferry.cjs, with the esbuild that tsx already brings. bin/ferry.js runs
// the bundle while it is newer than every workspace source, and the TypeScript sources through
// tsx otherwise: the bundle starts faster and, without tsx's module-loader thread and its heap,
// peaks ~35 MB lower (bench/README.md, "Memory"). `pnpm build` runs this; so does bootstrap.
//
// CommonJS rather than ESM because bin/run-bundle.js compiles it with vm.Script, the one API of
// Node 20 that takes a V8 code cache; import.meta.url (the CLI reads its package.json beside it)
// becomes the bundle's own file URL.
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(join(pkgDir, "package.json"));
const esbuild = createRequire(require.resolve("tsx/package.json"))("esbuild");

await esbuild.build({
  entryPoints: [join(pkgDir, "src", "main.ts")],
  outfile: join(pkgDir, "dist", "ferry.cjs"),
  bundle: true,
  platform: "node",
  format: "cjs",
  target: "node20",
  logLevel: "warning",
  define: { "import.meta.url": "__ferryImportMetaUrl" },
  banner: { js: 'const __ferryImportMetaUrl = require("node:url").pathToFileURL(__filename).href;' },
});
