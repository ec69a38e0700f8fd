// Run a CommonJS bundle with a V8 code cache beside it, so a process does not parse and compile
// the same ~1 MB of JavaScript on every start. Node 20 has no compile cache of its own
// (module.enableCompileCache() arrived in Node 22.1), but vm.Script accepts V8's cached data.
// Measured on a `ferry pull` with nothing to download: 0.21–0.29 s with the cache, 0.28–0.32 s
// without (docs/cli.md, "Start-up").
//
// The cache file is `<bundle>.cache`: the SHA-256 of the bundle's text, the SHA-256 of the V8
// data, how long the run that made it lasted (ms, uint32), then the data. V8 itself only checks the source's *length* (and its own version and
// flags), so the first hash keeps a rebuilt bundle from ever running with another build's
// compiled code; the second refuses a torn or corrupted file. Anything that does not match is
// ignored and replaced. The cache is written at exit, after the run compiled the functions it
// needed, when it was missing or refused; a directory the user cannot write (an installed
// package) only means no cache. A cache made by a short run (a first `ferry content ls`) holds
// little of what a transfer compiles, so the first long run that uses it makes a new one.
//
// V8 also refuses data made under other V8 flags: a flag a process sets at run time must be set
// before runBundle compiles (bin/ferry.js sets --liftoff-only first for that reason).
//
//   node run-bundle.js BUNDLE.cjs [args…]   runs BUNDLE with process.argv = [node, BUNDLE, args…]
import { createHash } from "node:crypto";
import { readFileSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { Script } from "node:vm";

const HASH_BYTES = 32;
const HEADER_BYTES = 2 * HASH_BYTES + 4;

function sha256(data) {
  return createHash("sha256").update(data).digest();
}

/**
 * The V8 data in `cacheFile` and how long its run lasted, when it was made for `sourceHash` and
 * is whole; else undefined.
 */
function readCache(cacheFile, sourceHash) {
  let file;
  try {
    file = readFileSync(cacheFile);
  } catch {
    return undefined;
  }
  if (file.length <= HEADER_BYTES) return undefined;
  const data = file.subarray(HEADER_BYTES);
  if (!file.subarray(0, HASH_BYTES).equals(sourceHash)) return undefined;
  if (!file.subarray(HASH_BYTES, 2 * HASH_BYTES).equals(sha256(data))) return undefined;
  return { data, madeInMs: file.readUInt32BE(2 * HASH_BYTES) };
}

function writeCache(cacheFile, sourceHash, data, madeInMs) {
  // A temporary name and a rename: a concurrent start reads the old file or the new, never half.
  const tmp = `${cacheFile}.${process.pid}.tmp`;
  const ms = Buffer.alloc(4);
  ms.writeUInt32BE(Math.min(Math.round(madeInMs), 0xffffffff));
  try {
    writeFileSync(tmp, Buffer.concat([sourceHash, sha256(data), ms, data]));
    renameSync(tmp, cacheFile);
  } catch {
    try {
      unlinkSync(tmp);
    } catch {
      // never created
    }
  }
}

/**
 * Run the CommonJS file `file` in this context, as Node's loader would (exports, require, module,
 * __filename, __dirname), compiling it with the code cache `<file>.cache` when that is valid.
 * With `write: false` nothing is written (runs too short to be representative, such as
 * `--version`). A run of `refreshAfterMs` or more that used a cache made by a shorter run
 * replaces it at exit (once: the new cache is a long run's). Returns how the cache was used: "hit",
 * "miss" (none usable) or "rejected" (V8 refused it: another Node version or other flags).
 */
export function runBundle(file, { write = true, refreshAfterMs = 1000 } = {}) {
  const source = readFileSync(file, "utf8");
  const sourceHash = sha256(source);
  const cacheFile = `${file}.cache`;
  const cached = readCache(cacheFile, sourceHash);
  const cachedData = cached?.data;
  const wrapped = `(function (exports, require, module, __filename, __dirname) {${source}\n})`;
  const started = performance.now();
  const script = new Script(wrapped, { filename: file, cachedData });
  const outcome = cachedData === undefined ? "miss" : script.cachedDataRejected ? "rejected" : "hit";
  const shortMade = outcome !== "hit" || cached.madeInMs < refreshAfterMs;
  if (write && shortMade) {
    process.once("exit", () => {
      const ranMs = performance.now() - started;
      if (outcome === "hit" && ranMs < refreshAfterMs) return; // no better than the cache it used
      writeCache(cacheFile, sourceHash, script.createCachedData(), ranMs);
    });
  }
  globalThis[Symbol.for("ferry.codeCache")] = outcome;
  const module = { exports: {}, filename: file, id: ".", loaded: false };
  script.runInThisContext().call(module.exports, module.exports, createRequire(file), module, file, dirname(file));
  return outcome;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const file = process.argv[2];
  if (file === undefined) {
    process.stderr.write("usage: node run-bundle.js BUNDLE.cjs [args…]\n");
    process.exit(2);
  }
  // The bundle sees itself as the script: process.argv = [node, BUNDLE, args…].
  process.argv.splice(1, 2, resolve(file));
  runBundle(resolve(file));
}
