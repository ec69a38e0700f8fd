#!/usr/bin/env node
// The `ferry` command. The package ships TypeScript sources, so tsx's ESM loader is registered
// in this process first (no build step, no second process), then the CLI entry is loaded.
import { register } from "tsx/esm/api";

register();
await import("../src/main.ts");
