/**
 * The `ferry` process when the reader of its stdout or stderr goes away: a transfer finishes
 * (its output was only a report), `fetch | head` stops quietly.
 */
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { openFsStore } from "@ferry/store-fs";
import { binPath, seedImage, spawnShell, type SeededImage, useRegistry } from "./helpers.ts";

const env = useRegistry();
let img: SeededImage;
beforeAll(async () => {
  img = await seedImage(env.reg.host, "pipes/app:1", join(env.tmp.dir, "layout"), { layers: 4, layerSize: 256 * 1024 });
});

/** Run `line` in bash, `$FERRY` standing for the ferry executable; and ferry's exit status. */
async function pipeline(line: string): Promise<{ ferryCode: number; stdout: string }> {
  const ferry = `'${process.execPath}' '${binPath}'`;
  const r = await spawnShell("bash", ["-c", `${line.replaceAll("$FERRY", ferry)}; echo "ferry-exit=\${PIPESTATUS[0]}"`]);
  const m = /ferry-exit=(\d+)/.exec(r.stdout);
  return { ferryCode: Number(m?.[1] ?? -1), stdout: r.stdout };
}

async function named(store: string, name: string): Promise<boolean> {
  const s = await openFsStore(store);
  return s.getName(name).then(
    () => true,
    () => false,
  );
}

describe("closed pipes", () => {
  it("a pull whose stdout reader stops after one line still finishes, and says so", async () => {
    const store = join(env.tmp.dir, "s1");
    const r = await pipeline(`$FERRY pull ${img.reference} --store ${store} --json --progress plain 2>/dev/null | head -1 >/dev/null`);
    expect(r.ferryCode).toBe(0);
    expect(await named(store, img.reference)).toBe(true);
  });

  it("a pull whose stderr reader goes away does not crash", async () => {
    const store = join(env.tmp.dir, "s2");
    const r = await pipeline(`$FERRY pull ${img.reference} --store ${store} --progress plain 2>&1 >/dev/null | head -c 1 >/dev/null`);
    expect(r.ferryCode).toBe(0);
    expect(await named(store, img.reference)).toBe(true);
  });

  it("fetch | head stops quietly with 0", async () => {
    const r = await pipeline(`$FERRY fetch ${img.reference} --platform linux/amd64 | head -c 10 >/dev/null`);
    expect(r.ferryCode).toBe(0);
  });
});
