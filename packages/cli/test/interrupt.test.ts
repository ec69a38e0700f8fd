import { spawn } from "node:child_process";
import { join } from "node:path";
import { expect, it } from "vitest";
import { binPath, runCli, seedImage, tempDir, useRegistry } from "./helpers.ts";

const env = useRegistry();

it("SIGINT stops a pull with exit 130, keeps the partial ingest, and the next pull resumes it", async () => {
  const img = await seedImage(env.reg.host, "slow/app:1", join(env.tmp.dir, "layout"), { layers: 1, layerSize: 2 * 1024 * 1024 });
  const store = join(env.tmp.dir, "store");
  // Layer bytes trickle: the pull is surely in the middle of the layer when interrupted.
  env.reg.registry.setFaults([{ method: "GET", path: /\/blobs\/sha256:/, rateBytesPerSec: 256 * 1024 }]);

  const child = spawn(process.execPath, [binPath, "pull", img.reference, "--store", store, "--json"], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stderr.on("data", (c: Buffer) => (err += c.toString()));
  const code = await new Promise<number | null>((resolve) => {
    let sent = false;
    child.stdout.on("data", (c: Buffer) => {
      out += c.toString();
      // Interrupt once the layer has visibly moved some bytes.
      if (!sent && /"type":"downloading","ref":"layer-[^"]*".*"offset":[1-9]\d{5,}/.test(out)) {
        sent = true;
        child.kill("SIGINT");
      }
    });
    child.on("close", (c) => resolve(c));
  });
  expect(code, err).toBe(130);
  expect(out).toMatch(/"type":"error".*"code":"Aborted"/);

  const active = await runCli(["content", "active", "--json", "--store", store]);
  const partial = active.stdout.trim().split("\n").map((l) => JSON.parse(l) as { ref: string; offset: number; total: number });
  const layer = partial.find((s) => s.ref.startsWith("layer-"));
  expect(layer?.offset).toBeGreaterThan(0);
  expect(layer?.offset).toBeLessThan(layer?.total ?? 0);

  env.reg.registry.setFaults([]);
  const again = await runCli(["pull", img.reference, "--store", store, "--json"]);
  expect(again.code, again.stderr).toBe(0);
  const resumed = again.stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l) as { type: string; ref?: string; offset?: number });
  expect(resumed.find((e) => e.type === "resumed" && e.ref === layer?.ref)?.offset).toBeGreaterThan(0);
  expect((await runCli(["content", "active", "-q", "--store", store])).stdout).toBe("");
});
