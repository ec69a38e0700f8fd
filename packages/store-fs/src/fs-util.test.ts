import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { randomToken } from "./fs-util.ts";

describe("randomToken", () => {
  it("never repeats within a process", () => {
    const seen = new Set(Array.from({ length: 10_000 }, () => randomToken()));
    expect(seen.size).toBe(10_000);
  });

  it("differs between processes from their first call", () => {
    const script = `import { randomToken } from ${JSON.stringify(new URL("./fs-util.ts", import.meta.url).pathname)}; console.log(randomToken());`;
    const run = (): string => execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { encoding: "utf8" }).trim();
    const a = run();
    const b = run();
    expect(a).toMatch(/^[0-9a-f]{16}0$/);
    expect(b).not.toBe(a);
  });
});
