/**
 * undici parses HTTP with llhttp, compiled to WebAssembly. Once the parser is hot, V8 compiles
 * it again with its optimizing compiler (TurboFan) on a background thread, and that compile's
 * scratch memory, 30–37 MB malloc'd in the thread's glibc arena, stays in the process after it
 * is freed: measured on an 8 × 128 MiB pull, peak RSS 115 MB with it, 84 MB without, at the
 * same speed (the baseline code parses a response head about as fast, and the background
 * compile's CPU is saved).
 */
import { setFlagsFromString } from "node:v8";

let applied = false;

/**
 * Keep WebAssembly on V8's baseline compiler (Liftoff) for the rest of the process. It is a
 * process-wide V8 setting: every WebAssembly module compiled afterwards, the application's own
 * included, runs baseline code (slower for long computations), so it is an opt-in for processes
 * whose main work is transfers; the `ferry` command calls it. Call it before the first request:
 * modules already optimized stay so. Idempotent.
 */
export function useBaselineWasm(): void {
  if (applied) return;
  applied = true;
  setFlagsFromString("--liftoff-only");
}
