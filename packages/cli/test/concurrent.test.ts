import { join } from "node:path";
import { expect, it } from "vitest";
import { runCli, seedImage, spawnCli, tempDir, useRegistry } from "./helpers.ts";

const env = useRegistry();

it("two ferry processes pulling one image into one store both succeed and move each blob about once", async () => {
  const img = await seedImage(env.reg.host, "race/app:1", join(env.tmp.dir, "layout"), { layers: 3, layerSize: 512 * 1024 });
  const store = join(env.tmp.dir, "store");
  // Slow enough that the two processes overlap on the same blobs.
  env.reg.registry.setFaults([{ method: "GET", path: /\/blobs\/sha256:/, rateBytesPerSec: 1024 * 1024 }]);
  const [a, b] = await Promise.all([
    spawnCli(["pull", img.reference, "--store", store, "--json"]),
    spawnCli(["pull", img.reference, "--store", store, "--json"]),
  ]);
  env.reg.registry.setFaults([]);
  expect(a.code, a.stderr).toBe(0);
  expect(b.code, b.stderr).toBe(0);
  const result = (out: string) => JSON.parse(out.trim().split("\n").at(-1) as string) as { type: string; totals: { bytesTransferred: number; bytesTotal: number } };
  const ra = result(a.stdout);
  const rb = result(b.stdout);
  expect(ra.type).toBe("result");
  expect(rb.type).toBe("result");
  // The ingest locks make the later process wait and then find the blob committed, instead of
  // downloading it a second time (or failing with "locked").
  const layerBytes = img.layers.reduce((s, d) => s + d.size, 0);
  expect(ra.totals.bytesTransferred + rb.totals.bytesTransferred).toBeLessThan(layerBytes * 1.5);
  const have = new Set((await runCli(["content", "ls", "-q", "--store", store])).stdout.trim().split("\n"));
  for (const d of [img.root, ...img.configs, ...img.layers]) expect(have.has(d.digest)).toBe(true);
  expect((await runCli(["content", "active", "-q", "--store", store])).stdout).toBe("");
});
