/**
 * containerd's early `dist` README showed a pull built from plumbing: fetch the manifest, turn
 * its layers into `fetch | ingest` lines with jq, run them with `xargs -P`. The same pipeline,
 * with ferry, in bash, against a local registry.
 */
import { randomBytes } from "node:crypto";
import { mkdir, readFile, symlink } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { digestOf, type Descriptor } from "@ferry/core";
import { openFsStore } from "@ferry/store-fs";
import { describeWithRegistry, requireTools } from "@ferry/testkit";
import { binPath, runCli, seedImage, spawnShell, startLocalRegistry, tempDir, type LocalRegistry, type SeededImage } from "./helpers.ts";

/** Exactly what docs/cli.md shows. */
export const PIPELINE = `set -eu
ferry fetch "$REF" \\
  | jq -r --arg ref "$REF" '(.config, .layers[]) | "ferry fetch \\($ref) \\(.digest) | ferry content ingest --ref \\(.digest) --expected-size \\(.size) --expected-digest \\(.digest)"' \\
  | xargs -I{} -P4 sh -c "{}"
ferry fetch "$REF" | ferry content ingest --ref manifest --expected-digest "$(ferry resolve -q "$REF")"
`;

/** A directory holding `ferry` (a link to the bin), to put on PATH as an installed bin would be. */
async function ferryOnPath(dir: string): Promise<string> {
  const bin = join(dir, "bin");
  await mkdir(bin);
  await symlink(binPath, join(bin, "ferry"));
  return bin;
}

/** The digests the pipeline must leave in `work`'s ./.content: manifest, config, layers. */
async function expectPulled(work: string, img: SeededImage): Promise<void> {
  const have = new Set((await runCli(["content", "ls", "-q"], { cwd: work })).stdout.trim().split("\n"));
  const image = img.images[0];
  const want = [image?.manifest, image?.config, ...(image?.layers ?? [])].map((d) => (d as Descriptor).digest);
  expect(have).toEqual(new Set(want));
  for (const d of want) {
    const p = (await runCli(["content", "path", d], { cwd: work })).stdout.trim();
    expect(digestOf(await readFile(p))).toBe(d);
  }
}

describeWithRegistry(
  "fetch | jq | xargs -P ingest against the real docker-registry",
  (ctx) => {
    it("pulls config, layers and manifest into ./.content", async () => {
      const tmp = await tempDir();
      try {
        const img = await seedImage(ctx.registry.host, "dist/real:1", join(tmp.dir, "layout"), { layers: 3, layerSize: 128 * 1024 });
        const env = { ...process.env, PATH: `${await ferryOnPath(tmp.dir)}:${process.env.PATH ?? ""}`, REF: img.reference };
        const work = join(tmp.dir, "work");
        await mkdir(work);
        const r = await spawnShell("bash", ["-c", PIPELINE], { cwd: work, env });
        expect(r.code, r.stderr).toBe(0);
        await expectPulled(work, img);
        expect((await runCli(["content", "active", "-q"], { cwd: work })).stdout).toBe("");
      } finally {
        await tmp.remove();
      }
    });
  },
  { tools: ["bash", "jq", "xargs"] },
);

describe.runIf(requireTools("bash", "jq", "xargs"))("fetch | jq | xargs -P ingest", () => {
  let reg: LocalRegistry;
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let img: SeededImage;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    reg = await startLocalRegistry();
    tmp = await tempDir();
    img = await seedImage(reg.host, "dist/app:1", join(tmp.dir, "layout"), { layers: 3, layerSize: 256 * 1024 });
    env = { ...process.env, PATH: `${await ferryOnPath(tmp.dir)}:${process.env.PATH ?? ""}`, REF: img.reference };
  });
  afterAll(async () => {
    await reg.stop();
    await tmp.remove();
  });

  it("pulls config, layers and manifest into ./.content in parallel, resuming a partial ingest", async () => {
    const work = join(tmp.dir, "work");
    await mkdir(work);
    // An earlier, interrupted run left half of one layer behind under the same ref.
    const layer = img.layers[1] as Descriptor;
    const store = await openFsStore(join(work, ".content"));
    const w = await store.writer({ ref: layer.digest, total: layer.size, expected: layer.digest });
    const layerBytes = await readFile(join(img.dir, "blobs", "sha256", layer.digest.slice(7)));
    await w.write(layerBytes.subarray(0, Math.floor(layer.size / 2)));
    await w.close();
    // …and a stray ingest that the pipeline must not touch.
    const stray = await store.writer({ ref: "unrelated" });
    await stray.write(randomBytes(10));
    await stray.close();

    const r = await spawnShell("bash", ["-c", PIPELINE], { cwd: work, env });
    expect(r.code, r.stderr).toBe(0);

    await expectPulled(work, img);
    // The resumed ingest committed; only the unrelated one is left.
    expect((await runCli(["content", "active", "-q"], { cwd: work })).stdout).toBe("unrelated\n");
  });

  it("a reader that stops early (head) ends ferry fetch quietly with 0", async () => {
    const layer = img.layers[0] as Descriptor;
    const script = `ferry fetch "$REF" ${layer.digest} | head -c 100 | wc -c; echo "fetch=\${PIPESTATUS[0]}"`;
    const r = await spawnShell("bash", ["-c", script], { env });
    expect(r.stdout).toMatch(/^100\nfetch=0\n$/);
    expect(r.stderr).toBe("");
  });
});
