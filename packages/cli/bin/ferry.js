#!/usr/bin/env -S node --max-semi-space-size=1
// The `ferry` command. The package ships TypeScript sources, so tsx's ESM loader is registered
// in this process first (no build step, no second process), then the CLI entry is loaded.
//
// --max-semi-space-size=1 (MiB) keeps V8's young generation small. Socket reads allocate a fresh
// buffer each; V8 frees them only when it scavenges, and it scavenges for such "external" bytes only
// once they reach twice the semi-space size (32 MiB by default), while the young generation itself
// grows to 3 × 16 MiB of garbage. 1 MiB cut a 1 GiB pull's peak RSS by ~15 MB and 1000 small blobs'
// by ~13 MB (bench/README.md, "Memory"). Run as `node bin/ferry.js`, add the flag yourself.
import { register } from "tsx/esm/api";

register();
await import("../src/main.ts");
