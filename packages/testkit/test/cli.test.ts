import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { expect, it } from "vitest";
import { main, parseSize } from "../src/cli.ts";

it("parses sizes: MiB by default, K/M/G/B suffixes", () => {
  expect(parseSize("8")).toBe(8 << 20);
  expect(parseSize("64K")).toBe(64 << 10);
  expect(parseSize("2m")).toBe(2 << 20);
  expect(parseSize("1G")).toBe(1 << 30);
  expect(parseSize("100B")).toBe(100);
  expect(() => parseSize("1.5")).toThrow(/bad SIZE/);
});

it("main builds without pushing and rejects bad input", async () => {
  const base = await mkdtemp(join(tmpdir(), "ferry-testkit-cli-"));
  try {
    await expect(main(["x", "demo", "1", "1K", "--no-push", "--layout", join(base, "a")])).rejects.toMatchObject({ code: "InvalidArgument" });
    await expect(main(["x", "demo:1", "1", "1K", "--no-push"])).rejects.toThrow(/--layout/);
    expect(await main(["x", "demo"])).toBe(2);
  } finally {
    await rm(base, { recursive: true, force: true });
  }
});

it("scripts/make-image.sh prints eval-able lines and keeps the layout", async () => {
  const base = await mkdtemp(join(tmpdir(), "ferry-testkit-cli-"));
  try {
    const script = join(import.meta.dirname, "..", "..", "..", "scripts", "make-image.sh");
    const layout = join(base, "l");
    const { stdout } = await promisify(execFile)(script, ["--no-push", "--layout", layout, "--index", "--seed", "s", "unused", "demo:7", "1", "2K"]);
    const vars = Object.fromEntries(stdout.trim().split("\n").map((l) => l.split("=", 2) as [string, string]));
    expect(vars.MEDIA_TYPE).toBe("application/vnd.oci.image.index.v1+json");
    expect(vars.LAYOUT).toBe(layout);
    expect(vars.SOURCE).toBe(`oci:${layout}:7`);
    const index = JSON.parse(await readFile(join(layout, "index.json"), "utf8"));
    expect(index.manifests[0].digest).toBe(vars.DIGEST);
    expect(vars.IMAGE).toBeUndefined();
  } finally {
    await rm(base, { recursive: true, force: true });
  }
});
