#!/usr/bin/env -S node --max-semi-space-size=4
// The `ferry` command. The package ships TypeScript sources, so tsx's ESM loader is registered
// in this process first (no build step, no second process), then the CLI entry is loaded.
//
// --max-semi-space-size=4 (MiB) keeps V8's young generation small: see src/node-flags.ts, which
// holds the same list for the benchmark (a test keeps them equal). Run as `node bin/ferry.js`,
// add the flag yourself.
import { register } from "tsx/esm/api";

register();
await import("../src/main.ts");
