import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { digestOf, type Descriptor } from "@ferry/core";
import { buildImage, type BuiltLayout } from "@ferry/testkit";
import { runCli, tempDir, useRegistry } from "./helpers.ts";

const env = useRegistry();
let built: BuiltLayout;
let l1: string;
beforeAll(async () => {
  l1 = join(env.tmp.dir, "l1");
  built = await buildImage({ dir: l1, name: "v1", layers: 2, layerSize: 120_000, platforms: ["linux/amd64", "linux/arm64"], gzipLevel: 0 });
});

/** Run and capture raw stdout bytes (fetch writes binary). */
async function fetchBytes(args: string[]): Promise<{ code: number; bytes: Buffer; stderr: string }> {
  const r = await runCli(["fetch", ...args]);
  return { code: r.code, bytes: r.stdoutBytes, stderr: r.stderr };
}

describe("ferry copy", () => {
  it("round-trips oci:DIR:NAME -> registry -> oci:DIR:NAME with identical digests, and push sends it on", async () => {
    const ref = `${env.reg.host}/rt/app:v1`;
    const up = await runCli(["copy", `oci:${l1}:v1`, ref]);
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout).toContain(`copied oci:${l1}:v1 -> ${ref} ${built.root.digest}`);
    expect(JSON.parse((await runCli(["resolve", ref])).stdout)).toEqual({ mediaType: built.root.mediaType, digest: built.root.digest, size: built.root.size });

    const l2 = join(env.tmp.dir, "l2");
    const down = await runCli(["copy", ref, `oci:${l2}:back`, "--json"]);
    expect(down.code, down.stderr).toBe(0);
    const index = JSON.parse(await readFile(join(l2, "index.json"), "utf8")) as { manifests: Descriptor[] };
    const entry = index.manifests.find((m) => m.annotations?.["org.opencontainers.image.ref.name"] === "back");
    expect(entry?.digest).toBe(built.root.digest);
    const all = [built.root, ...built.manifests, ...built.configs, ...built.layers].map((d) => d.digest);
    const have = (await runCli(["content", "ls", "-q", "--store", l2])).stdout.trim().split("\n");
    expect(new Set(have)).toEqual(new Set(all));

    // Without a name the destination layout takes the source tag.
    const l3 = join(env.tmp.dir, "l3");
    expect((await runCli(["copy", ref, `oci:${l3}`, "-q"])).code).toBe(0);
    expect((await runCli(["resolve", "-q", `oci:${l3}:v1`])).stdout).toBe(`${built.root.digest}\n`);

    // push: from a store name to another repository.
    const pushed = await runCli(["push", `${env.reg.host}/rt/pushed:2`, "--store", l2, "--from", "back", "--json"]);
    expect(pushed.code, pushed.stderr).toBe(0);
    expect(pushed.stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l) as { type: string }).some((e) => e.type === "uploading" || e.type === "done")).toBe(true);
    expect((await runCli(["resolve", "-q", `${env.reg.host}/rt/pushed:2`])).stdout).toBe(`${built.root.digest}\n`);

    // push with --mount-from: the layers are mounted from the repository that has them, not uploaded.
    const mounted = await runCli(["push", `${env.reg.host}/rt/mounted:1`, "--store", l2, "--from", "back", "--mount-from", "rt/app", "--json"]);
    expect(mounted.code, mounted.stderr).toBe(0);
    const events = mounted.stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l) as { type: string; digest?: string; from?: string });
    for (const layer of built.layers) expect(events.find((e) => e.type === "mounted" && e.digest === layer.digest)?.from).toBe("rt/app");
    expect(events.some((e) => e.type === "uploading" && built.layers.some((l) => l.digest === e.digest))).toBe(false);
  });

  it("pull reads an oci: layout too, and global options may come before the command", async () => {
    const store = join(env.tmp.dir, "from-layout");
    const r = await runCli(["--progress", "plain", "pull", `oci:${l1}:v1`, "--store", store, "--platform", "linux/arm64"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^resolved v1 -> /m);
    expect((await runCli(["resolve", "-q", `oci:${store}:v1`])).stdout).toBe(`${built.root.digest}\n`);
    const arm = built.images.find((i) => i.platform.architecture === "arm64");
    const have = (await runCli(["content", "ls", "-q", "--store", store])).stdout;
    for (const l of arm?.layers ?? []) expect(have).toContain(l.digest);
    expect(have.trim().split("\n")).toHaveLength(1 + 1 + 1 + 2);
  });

  it("addresses the names pull records (colons, slashes) as oci:DIR:NAME, the directory ending at the first colon", async () => {
    const store = join(env.tmp.dir, "named-store");
    const ref = `${env.reg.host}/rt/named:1`;
    expect((await runCli(["copy", `oci:${l1}:v1`, ref, "-q"])).code).toBe(0);
    expect((await runCli(["pull", ref, "--store", store, "-q", "--platform", "linux/amd64"])).code).toBe(0);
    const r = await runCli(["resolve", "-q", `oci:${store}:${ref}`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`${built.root.digest}\n`);
  });

  it("a layout with several names needs oci:DIR:NAME", async () => {
    const l4 = join(env.tmp.dir, "l4");
    expect((await runCli(["copy", `oci:${l1}:v1`, `oci:${l4}:a`])).code).toBe(0);
    expect((await runCli(["copy", `oci:${l1}:v1`, `oci:${l4}:b`])).code).toBe(0);
    const r = await runCli(["copy", `oci:${l4}`, `${env.reg.host}/rt/x:1`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/2 names/);
  });
});

describe("ferry fetch", () => {
  const ref = (): string => `${env.reg.host}/fetch/app:v1`;
  beforeAll(async () => {
    expect((await runCli(["copy", `oci:${l1}:v1`, ref(), "-q"])).code).toBe(0);
  });

  it("writes the index, a platform's manifest, and any blob of the graph, verified", async () => {
    const idx = await fetchBytes([ref()]);
    expect(idx.code).toBe(0);
    expect(digestOf(idx.bytes)).toBe(built.root.digest);

    const arm = built.images.find((i) => i.platform.architecture === "arm64");
    const m = await fetchBytes([ref(), "--platform", "linux/arm64"]);
    expect(digestOf(m.bytes)).toBe(arm?.manifest.digest);
    expect(JSON.parse(m.bytes.toString("utf8")).layers).toHaveLength(2);

    const layer = arm?.layers[1] as Descriptor;
    const blob = await fetchBytes([ref(), layer.digest]);
    expect(blob.code, blob.stderr).toBe(0);
    expect(blob.bytes.length).toBe(layer.size);
    expect(digestOf(blob.bytes)).toBe(layer.digest);

    const direct = await fetchBytes([`${env.reg.host}/fetch/app`, layer.digest, "--size", String(layer.size)]);
    expect(digestOf(direct.bytes)).toBe(layer.digest);

    const fromLayout = await fetchBytes([`oci:${l1}:v1`, layer.digest]);
    expect(digestOf(fromLayout.bytes)).toBe(layer.digest);
  });

  it("a digest outside the graph is not found (3)", async () => {
    const r = await runCli(["fetch", ref(), digestOf("not in this image")]);
    expect(r.code).toBe(3);
  });

  it("a wrong --size fails verification (1)", async () => {
    const layer = built.layers[0] as Descriptor;
    const r = await runCli(["fetch", `${env.reg.host}/fetch/app`, layer.digest, "--size", String(layer.size - 1)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/SizeMismatch|DigestMismatch/);
  });
});
