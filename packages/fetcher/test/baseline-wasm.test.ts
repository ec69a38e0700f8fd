/**
 * useBaselineWasm keeps WebAssembly on V8's baseline compiler: a hot function stays Liftoff
 * code instead of being recompiled by TurboFan. Checked in a child process (the setting is
 * process-wide) with V8's test intrinsics.
 */
import { spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, expect, it } from "vitest";

const baselineModule = pathToFileURL(fileURLToPath(new URL("../src/baseline-wasm.ts", import.meta.url))).href;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "ferry-wasm-"));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

// A wasm function with a loop: (param n) sums n-1 … 0. Hot enough, V8 tiers it up to TurboFan.
const script = (apply: boolean): string => `
const { useBaselineWasm } = await import(${JSON.stringify(baselineModule)});
if (${apply}) { useBaselineWasm(); useBaselineWasm(); }
const bytes = new Uint8Array([0,97,115,109,1,0,0,0, 1,6,1,96,1,127,1,127, 3,2,1,0, 7,8,1,4,115,112,105,110,0,0,
  10,27,1,25,1,1,127, 3,64, 32,0,65,1,107,34,0, 32,1,106,33,1, 32,0,13,0, 11, 32,1, 11]);
const { instance } = await WebAssembly.instantiate(bytes);
const spin = instance.exports.spin;
const tier = new Function("f", "return { liftoff: %IsLiftoffFunction(f), turbofan: %IsTurboFanFunction(f) }");
for (let round = 0; round < 20 && !tier(spin).turbofan; round++) {
  for (let i = 0; i < 200; i++) spin(100000);
  await new Promise((r) => setTimeout(r, 50));
}
console.log(JSON.stringify(tier(spin)));
`;

async function tierAfterHotLoop(apply: boolean): Promise<{ liftoff: boolean; turbofan: boolean }> {
  const file = join(dir, `probe-${apply}.mjs`);
  await writeFile(file, script(apply));
  const r = spawnSync(process.execPath, ["--allow-natives-syntax", "--import", "tsx", file], { encoding: "utf8", timeout: 60_000 });
  expect(r.stderr).toBe("");
  return JSON.parse(r.stdout.trim().split("\n").at(-1)!) as { liftoff: boolean; turbofan: boolean };
}

it("without it, a hot WebAssembly function is recompiled by TurboFan (the probe can tell)", async () => {
  expect(await tierAfterHotLoop(false)).toEqual({ liftoff: false, turbofan: true });
}, 60_000);

it("with it, the same function stays baseline (Liftoff) code", async () => {
  expect(await tierAfterHotLoop(true)).toEqual({ liftoff: true, turbofan: false });
}, 60_000);
