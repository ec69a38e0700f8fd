/**
 * The `ferry` executable: it starts Node with the V8 flags its shebang names (bench/README.md,
 * "Memory"), and runs the plain-JavaScript bundle while it is fresh, the TypeScript sources
 * otherwise.
 */
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openFsStore } from "@ferry/store-fs";
import { FERRY_NODE_FLAGS } from "../src/node-flags.ts";
import { binPath, tempDir, type TempDir } from "./helpers.ts";

const bundleScript = fileURLToPath(new URL("../scripts/bundle.mjs", import.meta.url));
const bundleFile = fileURLToPath(new URL("../dist/ferry.cjs", import.meta.url));

let tmp: TempDir;
beforeAll(async () => {
  tmp = await tempDir();
});
afterAll(() => tmp?.remove());

interface Probed {
  code: number;
  stdout: string;
  execArgv: string[];
  entry: string;
  /** How bin/run-bundle.js used the code cache (bundle runs only). */
  codeCache?: string;
}

/** Run the executable itself with a preload (NODE_OPTIONS) that records its flags and entry. */
async function probe(args: string[], env: Record<string, string> = {}): Promise<Probed> {
  const script = join(tmp.dir, "probe.cjs");
  const out = join(tmp.dir, `probe-${Math.random().toString(36).slice(2)}.json`);
  await writeFile(
    script,
    `process.on("exit", () => require("node:fs").writeFileSync(process.env.PROBE_OUT, JSON.stringify({ execArgv: process.execArgv, entry: globalThis[Symbol.for("ferry.entry")], codeCache: globalThis[Symbol.for("ferry.codeCache")] })));\n`,
  );
  const child = spawn(binPath, args, {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NODE_OPTIONS: `--require ${script}`, PROBE_OUT: out, ...env },
  });
  let stdout = "";
  child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
  const [code] = (await once(child, "close")) as [number];
  const seen = JSON.parse(await readFile(out, "utf8")) as Omit<Probed, "code" | "stdout">;
  return { code, stdout, ...seen };
}

describe("bin/ferry.js run as an executable", () => {
  it("runs Node with FERRY_NODE_FLAGS (--max-semi-space-size=4: a small young generation, lower peak RSS)", async () => {
    const r = await probe(["--version"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ferry \d+\.\d+\.\d+/);
    expect(FERRY_NODE_FLAGS).toContain("--max-semi-space-size=4");
    expect(r.execArgv).toEqual([...FERRY_NODE_FLAGS]);
  });

  it("runs dist/ferry.cjs while it is newer than the sources, the sources when it is stale or FERRY_NO_BUNDLE=1", async () => {
    const built = spawnSync(process.execPath, [bundleScript], { encoding: "utf8" });
    expect(built.status, built.stderr).toBe(0);
    // rxjs comes from its ES build, tree-shaken (its CommonJS index loads every operator at start).
    const text = await readFile(bundleFile, "utf8");
    expect(text).toContain("rxjs/dist/esm/internal/Subject.js");
    expect(text).not.toContain("rxjs/dist/cjs/");
    const fresh = await probe(["--version"]);
    expect(fresh).toMatchObject({ code: 0, entry: "bundle" });
    expect(fresh.stdout).toMatch(/^ferry \d+\.\d+\.\d+/);

    const forced = await probe(["--version"], { FERRY_NO_BUNDLE: "1" });
    expect(forced).toMatchObject({ code: 0, entry: "sources", stdout: fresh.stdout });

    // A bundle older than the sources (an edit since the build) is never run.
    const old = new Date(Date.UTC(2001, 0, 1));
    await utimes(bundleFile, old, old);
    try {
      expect(await probe(["--version"])).toMatchObject({ code: 0, entry: "sources", stdout: fresh.stdout });
    } finally {
      const now = new Date();
      await utimes(bundleFile, now, now);
    }
    expect((await stat(bundleFile)).mtimeMs).toBeGreaterThan(old.getTime());
  }, 60_000);

  it("compiles the bundle from its V8 code cache, which a transfer's run writes and --version does not", async () => {
    const built = spawnSync(process.execPath, [bundleScript], { encoding: "utf8" });
    expect(built.status, built.stderr).toBe(0);
    await rm(`${bundleFile}.cache`, { force: true });
    expect(await probe(["--version"])).toMatchObject({ code: 0, entry: "bundle", codeCache: "miss" });
    await expect(stat(`${bundleFile}.cache`)).rejects.toMatchObject({ code: "ENOENT" });
    const store = join(tmp.dir, "cache-store");
    await openFsStore(store); // creates the layout
    expect(await probe(["content", "ls", "--store", store])).toMatchObject({ code: 0, entry: "bundle", codeCache: "miss" });
    expect((await stat(`${bundleFile}.cache`)).size).toBeGreaterThan(100_000);
    // The cache was made under --liftoff-only, which bin/ferry.js sets before compiling: a hit.
    expect(await probe(["content", "ls", "--store", store])).toMatchObject({ code: 0, entry: "bundle", codeCache: "hit" });
    expect(await probe(["--version"])).toMatchObject({ code: 0, codeCache: "hit" });
  }, 60_000);
});
