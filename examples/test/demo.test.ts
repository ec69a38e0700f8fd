import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { hasTool, requireTools } from "@ferry/testkit";
import { demo } from "../demo.ts";
import { runExample } from "./run-example.ts";

describe("examples/demo.ts (the README main job)", () => {
  it("runs as a process: embedded registry, two platforms, live progress lines, a summary", async () => {
    const r = await runExample("demo.ts", ["--layers", "2", "--size", "1"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^registry: embedded at http:\/\/127\.0\.0\.1:\d+$/m);
    expect(r.stdout).toMatch(/^pulled 127\.0\.0\.1:\d+\/demo\/app:1$/m);
    expect(r.stdout).toMatch(/^ {2}root {8}sha256:[0-9a-f]{64} \(application\/vnd\.oci\.image\.index\.v1\+json\)$/m);
    expect(r.stdout).toMatch(/^ {2}linux\/amd64 sha256:[0-9a-f]{64}/m);
    expect(r.stdout).toMatch(/^ {2}linux\/arm64 sha256:[0-9a-f]{64}/m);
    // 2 platforms × (manifest + config + 2 layers) + index
    expect(r.stdout).toMatch(/^ {2}blobs {7}9 \(0 already present\)$/m);
    expect(r.stdout).toMatch(/MB\/s/);
    // Not a terminal: progress as lines on stderr, one per finished layer.
    expect(r.stderr.match(/^layer-sha256:[0-9a-f]{12} done /gm)).toHaveLength(4);
  });

  it("pulls every byte of the graph into a fresh store and cleans it up", async () => {
    const lines: string[] = [];
    const res = await demo({ layers: 1, sizeMiB: 1, progress: "none", log: (l) => lines.push(l) });
    expect(res.blobs).toBe(7);
    expect(res.bytes).toBeGreaterThan(2 * 1024 * 1024);
    expect(existsSync(res.storeDir)).toBe(false);
    expect(lines.join("\n")).toContain(res.root.digest);
  });

  describe.runIf(requireTools("docker-registry"))("with --docker-registry", () => {
    it("seeds and pulls through the real distribution registry", async () => {
      expect(hasTool("docker-registry")).toBe(true);
      const r = await runExample("demo.ts", ["--docker-registry", "--layers", "1", "--size", "1"]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^registry: docker-registry at/m);
      expect(r.stdout).toMatch(/^ {2}blobs {7}7 /m);
    });
  });
});
