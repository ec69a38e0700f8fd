#!/usr/bin/env -S node --max-semi-space-size=4
// The `ferry` command. It runs dist/ferry.cjs, the bundle `pnpm build` makes (plain JavaScript:
// faster start, ~35 MB lower peak RSS), with a V8 code cache (run-bundle.js), while that bundle
// is newer than every workspace source and the lockfile; otherwise it registers tsx's ESM loader
// in this process and loads the TypeScript sources, so an edit is never shadowed by a stale
// bundle. FERRY_NO_BUNDLE=1 forces the sources.
//
// --max-semi-space-size=4 (MiB) keeps V8's young generation small: see src/node-flags.ts, which
// holds the same list for the benchmark (a test keeps them equal). Run as `node bin/ferry.js`,
// add the flag yourself.
import { readdirSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { setFlagsFromString } from "node:v8";
import { runBundle } from "./run-bundle.js";

const bundle = fileURLToPath(new URL("../dist/ferry.cjs", import.meta.url));
const workspace = fileURLToPath(new URL("../../../", import.meta.url));

/** Newest mtime (ms) of the files under `dir` whose names end in `.ts` (0 when `dir` is absent). */
function newestTs(dir) {
  let newest = 0;
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory()) newest = Math.max(newest, newestTs(path));
    else if (e.name.endsWith(".ts")) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

function bundleIsFresh() {
  if (process.env.FERRY_NO_BUNDLE === "1") return false;
  let built;
  try {
    built = statSync(bundle).mtimeMs;
  } catch {
    return false;
  }
  let newest = 0;
  try {
    newest = statSync(`${workspace}pnpm-lock.yaml`).mtimeMs;
  } catch {
    // not inside the workspace: nothing to compare with
  }
  let packages = [];
  try {
    packages = readdirSync(`${workspace}packages`);
  } catch {
    // likewise
  }
  for (const p of packages) newest = Math.max(newest, newestTs(`${workspace}packages/${p}/src`));
  return built > newest;
}

// Which of the two ran, for tests and bug reports.
const entry = Symbol.for("ferry.entry");
if (bundleIsFresh()) {
  globalThis[entry] = "bundle";
  // The setting main.ts makes with useBaselineWasm() (from @ferry/fetcher), made here already:
  // V8 refuses a code cache compiled under other flags, so it must hold before the compile.
  setFlagsFromString("--liftoff-only");
  // A cache written by `--version` or `--help` would hold little of what a transfer compiles.
  const args = process.argv.slice(2);
  const short = args.length === 0 || args.some((a) => a === "--version" || a === "--help" || a === "-h");
  runBundle(bundle, { write: !short });
} else {
  globalThis[entry] = "sources";
  const { register } = await import("tsx/esm/api");
  register();
  await import("../src/main.ts");
}
