/** The `ferry` executable starts Node with the V8 flags its shebang names (bench/README.md, "Memory"). */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FERRY_NODE_FLAGS } from "../src/node-flags.ts";
import { binPath, tempDir, type TempDir } from "./helpers.ts";

let tmp: TempDir;
beforeAll(async () => {
  tmp = await tempDir();
});
afterAll(() => tmp?.remove());

describe("bin/ferry.js run as an executable", () => {
  it("runs Node with FERRY_NODE_FLAGS (--max-semi-space-size=4: a small young generation, lower peak RSS)", async () => {
    // A preload in NODE_OPTIONS records the flags the shebang gave the process.
    const probe = join(tmp.dir, "probe.cjs");
    const out = join(tmp.dir, "exec-argv.json");
    await writeFile(probe, `require("node:fs").writeFileSync(${JSON.stringify(out)}, JSON.stringify(process.execArgv));\n`);
    const child = spawn(binPath, ["--version"], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NODE_OPTIONS: `--require ${probe}` },
    });
    let stdout = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    const [code] = (await once(child, "close")) as [number];
    expect(code).toBe(0);
    expect(stdout).toMatch(/^ferry \d+\.\d+\.\d+/);
    expect(FERRY_NODE_FLAGS).toContain("--max-semi-space-size=4");
    expect(JSON.parse(await readFile(out, "utf8"))).toEqual([...FERRY_NODE_FLAGS]);
  });
});
