#!/usr/bin/env node
// Bundle the `ferry` command (src/main.ts and the workspace packages it imports) into one plain
// JavaScript file, dist/ferry.cjs, with the esbuild that tsx already brings. bin/ferry.js runs
// the bundle while it is newer than every workspace source, and the TypeScript sources through
// tsx otherwise: the bundle starts faster and, without tsx's module-loader thread and its heap,
// peaks ~35 MB lower (bench/README.md, "Memory"). `pnpm build` runs this; so does bootstrap.
// The settings (CommonJS for the code cache, rxjs's ES build) are in bundle-options.mjs.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { bundleOptions, esbuild } from "./bundle-options.mjs";

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), "..");
await esbuild.build(bundleOptions(join(pkgDir, "src", "main.ts"), join(pkgDir, "dist", "ferry.cjs")));
