/**
 * bin/run-bundle.js: a CommonJS bundle run with a V8 code cache beside it. The cache must speed
 * up a start and never change what runs: a rebuilt bundle (even one of the same length, which is
 * all V8 itself checks), a torn cache or one made under other V8 flags is ignored and replaced.
 */
import { spawnSync } from "node:child_process";
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir, type TempDir } from "./helpers.ts";

const runBundleJs = fileURLToPath(new URL("../bin/run-bundle.js", import.meta.url));

let tmp: TempDir;
beforeAll(async () => {
  tmp = await tempDir();
});
afterAll(() => tmp?.remove());

interface Ran {
  outcome: string;
  value: string;
  argv: string[];
  filename: string;
  exported: unknown;
}

/** A bundle that reports what it saw; `value` is a same-length marker to tell builds apart. */
function bundleSource(value: string): string {
  // Enough functions that the cache is more than a header (and some compiled only when called).
  const helpers = Array.from({ length: 50 }, (_, i) => `function f${i}(x) { return x * ${i + 1} + ${i}; }`).join("\n");
  return `"use strict";
${helpers}
let total = 0;
for (let i = 0; i < 50; i++) total += eval("f" + i)(i);
module.exports = { total };
process.stdout.write(JSON.stringify({
  outcome: globalThis[Symbol.for("ferry.codeCache")],
  value: ${JSON.stringify(value)},
  argv: process.argv.slice(1),
  filename: __filename,
  exported: typeof require("node:path").join,
}) + "\\n");
`;
}

function run(file: string, args: string[] = [], nodeFlags: string[] = []): Ran {
  const r = spawnSync(process.execPath, [...nodeFlags, runBundleJs, file, ...args], { encoding: "utf8" });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Ran;
}

async function newBundle(name: string, value = "AAAA"): Promise<string> {
  const dir = join(tmp.dir, name);
  await mkdir(dir, { recursive: true });
  const file = join(dir, "bundle.cjs");
  await writeFile(file, bundleSource(value));
  return file;
}

describe("runBundle", () => {
  it("writes the cache on the first run and compiles from it on the next, with the same result", async () => {
    const file = await newBundle("first");
    const first = run(file, ["pull", "x"]);
    expect(first).toMatchObject({ outcome: "miss", value: "AAAA", argv: [file, "pull", "x"], filename: file, exported: "function" });
    const cache = await stat(`${file}.cache`);
    expect(cache.size).toBeGreaterThan(64);
    const second = run(file, ["pull", "x"]);
    expect(second).toEqual({ ...first, outcome: "hit" });
    // A hit does not rewrite the file.
    expect((await stat(`${file}.cache`)).mtimeMs).toBe(cache.mtimeMs);
  });

  it("never runs a rebuilt bundle with the old cache, even at the same length", async () => {
    const file = await newBundle("rebuilt", "AAAA");
    run(file);
    expect(run(file).outcome).toBe("hit");
    await writeFile(file, bundleSource("BBBB")); // same length: V8 alone would accept the old data
    const rebuilt = run(file);
    expect(rebuilt).toMatchObject({ outcome: "miss", value: "BBBB" });
    expect(run(file)).toMatchObject({ outcome: "hit", value: "BBBB" });
  });

  it("ignores a torn or corrupted cache file and replaces it", async () => {
    const file = await newBundle("torn");
    run(file);
    const good = await readFile(`${file}.cache`);
    const flipped = Buffer.from(good);
    flipped[flipped.length - 10]! ^= 0xff;
    await writeFile(`${file}.cache`, flipped);
    expect(run(file)).toMatchObject({ outcome: "miss", value: "AAAA" });
    // Replaced (V8's data differs from run to run, so compare what must hold, not bytes).
    const replaced = await readFile(`${file}.cache`);
    expect(replaced.subarray(0, 32)).toEqual(good.subarray(0, 32));
    expect(replaced.equals(flipped)).toBe(false);
    expect(run(file).outcome).toBe("hit");
    await writeFile(`${file}.cache`, good.subarray(0, 70));
    expect(run(file).outcome).toBe("miss");
    expect(run(file).outcome).toBe("hit");
  });

  it("reports a cache made under other V8 flags as rejected and replaces it", async () => {
    const file = await newBundle("flags");
    run(file);
    expect(run(file, [], ["--liftoff-only"]).outcome).toBe("rejected");
    expect(run(file, [], ["--liftoff-only"]).outcome).toBe("hit");
  });

  it("runs without a cache where it cannot write one", async () => {
    const file = await newBundle("unwritable");
    await mkdir(`${file}.cache`); // a directory in the way: neither readable as a file nor replaceable
    expect(run(file)).toMatchObject({ outcome: "miss", value: "AAAA" });
    expect(run(file)).toMatchObject({ outcome: "miss", value: "AAAA" });
    expect((await stat(`${file}.cache`)).isDirectory()).toBe(true);
  });

  it("replaces a cache made by a short run with one made by the first long run that uses it", async () => {
    const dir = join(tmp.dir, "grow");
    await mkdir(dir, { recursive: true });
    const file = join(dir, "bundle.cjs");
    // 200 functions compiled only when called: a run with "all" compiles them, one without does not;
    // "slow" makes the run last 300 ms.
    const fns = Array.from({ length: 200 }, (_, i) => `function g${i}(a) { let s = 0; for (let k = 0; k < a; k++) s += (k * ${i + 3}) % 7; return s + ${i}; }`);
    await writeFile(
      file,
      `"use strict";\n${fns.join("\n")}\nconst all = [${fns.map((_, i) => `g${i}`).join(", ")}];\n` +
        `if (process.argv.includes("all")) for (const g of all) g(3);\n` +
        `if (process.argv.includes("slow")) { const t = Date.now(); while (Date.now() - t < 300); }\n` +
        `process.stdout.write(JSON.stringify({ outcome: globalThis[Symbol.for("ferry.codeCache")] }) + "\\n");\n`,
    );
    const entry = join(dir, "entry.mjs");
    await writeFile(entry, `import { runBundle } from ${JSON.stringify(runBundleJs)};\nrunBundle(${JSON.stringify(file)}, { refreshAfterMs: 200 });\n`);
    const go = (...args: string[]): string => {
      const r = spawnSync(process.execPath, [entry, ...args], { encoding: "utf8" });
      expect(r.status, r.stderr).toBe(0);
      return (JSON.parse(r.stdout) as { outcome: string }).outcome;
    };
    const cacheStat = () => stat(`${file}.cache`);
    expect(go()).toBe("miss"); // a short run: its cache holds the top level only
    const small = await cacheStat();
    expect(go("all")).toBe("hit"); // short too: kept
    expect((await cacheStat()).mtimeMs).toBe(small.mtimeMs);
    expect(go("all", "slow")).toBe("hit"); // the first long run: replaced, with what it compiled
    const grown = await cacheStat();
    expect(grown.size).toBeGreaterThan(small.size * 1.5);
    expect(go("all", "slow")).toBe("hit"); // a long run's cache stays
    expect((await cacheStat()).mtimeMs).toBe(grown.mtimeMs);
  });

  it("writes no cache with write: false", async () => {
    const file = await newBundle("nowrite");
    const entry = join(tmp.dir, "nowrite", "entry.mjs");
    await writeFile(entry, `import { runBundle } from ${JSON.stringify(runBundleJs)};\nrunBundle(${JSON.stringify(file)}, { write: false });\n`);
    const r = spawnSync(process.execPath, [entry], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ outcome: "miss" });
    await expect(stat(`${file}.cache`)).rejects.toMatchObject({ code: "ENOENT" });
  });
});
