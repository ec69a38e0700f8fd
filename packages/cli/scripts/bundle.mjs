#!/usr/bin/env node
// Bundle the `ferry` command (src/main.ts and the workspace packages it imports) into one plain
// JavaScript file, dist/ferry.mjs, with the esbuild that tsx already brings. bin/ferry.js runs
// the bundle while it is newer than every workspace source, and the TypeScript sources through
// tsx otherwise: the bundle starts faster and, without tsx's module-loader thread and its heap,
// peaks ~35 MB lower (bench/README.md, "Memory"). `pnpm build` runs this; so does bootstrap.
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(join(pkgDir, "package.json"));
const esbuild = createRequire(require.resolve("tsx/package.json"))("esbuild");

await esbuild.build({
  entryPoints: [join(pkgDir, "src", "main.ts")],
  outfile: join(pkgDir, "dist", "ferry.mjs"),
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  logLevel: "warning",
  // CommonJS dependencies (undici, cli-progress) call require() for node built-ins.
  banner: { js: "import { createRequire as __ferryRequire } from 'node:module'; const require = __ferryRequire(import.meta.url);" },
});
