/** Flags and entry points the other CLI tests do not exercise: --concurrency, --insecure, `pnpm ferry`. */
import { lookup } from "node:dns/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { startFaultProxy } from "@ferry/testkit";
import { runCli, seedImage, spawnShell, type SeededImage, useRegistry } from "./helpers.ts";

const repoRoot = fileURLToPath(new URL("../../..", import.meta.url));

const env = useRegistry();
let img: SeededImage;
beforeAll(async () => {
  img = await seedImage(env.reg.host, "flags/app:1", join(env.tmp.dir, "layout"), { layers: 3, layerSize: 200_000, platforms: ["linux/amd64", "linux/arm64"] });
});

type Event = { type: string; ref?: string; kind?: string };

describe("--concurrency N", () => {
  it("1 moves one config or layer at a time: no blob starts before the previous one is done", async () => {
    const r = await runCli(["pull", img.reference, "--all-platforms", "--concurrency", "1", "--store", join(env.tmp.dir, "c1"), "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const events = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as Event);
    const active = new Set<string>();
    let peak = 0;
    let started = 0;
    for (const e of events) {
      if (e.kind !== "layer" && e.kind !== "config") continue;
      if (e.type === "downloading" || e.type === "resumed" || e.type === "committing") {
        if (!active.has(e.ref as string)) started++;
        active.add(e.ref as string);
      }
      peak = Math.max(peak, active.size);
      if (e.type === "done") active.delete(e.ref as string);
    }
    // 2 platforms × (config + 3 layers), each seen moving.
    expect(started).toBe(8);
    expect(peak).toBe(1);
  });
});

describe("--insecure HOST", () => {
  // A name for this machine that is not a loopback name (so https is the default) but resolves
  // to 127.0.0.1, where the test registry listens.
  const name = hostname();
  let usable = false;
  beforeAll(async () => {
    const isLoopbackName = name === "localhost" || name.endsWith(".localhost") || /^127\./.test(name);
    usable = !isLoopbackName && (await lookup(name, { family: 4 }).then((a) => a.address === "127.0.0.1", () => false));
  });

  it("talks plain HTTP to a non-loopback host only when named with --insecure", async (ctx) => {
    if (!usable) ctx.skip();
    const host = `${name}:${env.reg.host.split(":")[1]}`;
    const ref = `${host}/flags/app:1`;
    const tls = await runCli(["resolve", "-q", ref]);
    // https to a plain-HTTP server: the handshake fails (a network error, exit 5).
    expect(tls.code, tls.stderr).toBe(5);
    const plain = await runCli(["resolve", "-q", ref, "--insecure", host]);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout).toBe(`${img.root.digest}\n`);
    const pulled = await runCli(["pull", ref, "-q", "--insecure", host, "--store", join(env.tmp.dir, "insecure")]);
    expect(pulled.code, pulled.stderr).toBe(0);
    expect(pulled.stdout).toBe(`${img.root.digest}\n`);
  });
});

describe("push --platform", () => {
  it("a store holding one platform: push refuses the incomplete index (3), pushes that platform alone with --platform", async () => {
    const store = join(env.tmp.dir, "arm-only");
    expect((await runCli(["pull", img.reference, "--platform", "linux/arm64", "-q", "--store", store])).code).toBe(0);
    const dst = `${env.reg.host}/flags/arm:1`;
    const whole = await runCli(["push", dst, "--from", img.reference, "--store", store]);
    expect(whole.code).toBe(3);
    expect(whole.stderr).toMatch(/missing linux\/amd64.*select one platform/);
    const arm = img.images.find((i) => i.platform.architecture === "arm64");
    const one = await runCli(["push", dst, "--from", img.reference, "--platform", "linux/arm64", "-q", "--store", store]);
    expect(one.code, one.stderr).toBe(0);
    expect(one.stdout).toBe(`${arm?.manifest.digest}\n`);
    expect((await runCli(["resolve", "-q", dst])).stdout).toBe(`${arm?.manifest.digest}\n`);
  });
});

describe("pnpm ferry", () => {
  it("runs the workspace CLI from the repository root", async () => {
    const r = await spawnShell("pnpm", ["-s", "ferry", "resolve", "-q", img.reference], { cwd: repoRoot });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`${img.root.digest}\n`);
  });
});

describe("--per-host N", () => {
  // The cap is proven on the resolver (fetcher's protocol tests, concurrencyPerHost: 1) and
  // here end to end, by a proxy counting the requests in flight.
  it("is accepted on transfer commands and the pull lands every blob", async () => {
    const r = await runCli(["pull", img.reference, "--all-platforms", "--concurrency", "16", "--per-host", "1", "--store", join(env.tmp.dir, "ph1"), "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const events = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as Event);
    expect(events.filter((e) => e.type === "done" && (e.kind === "layer" || e.kind === "config"))).toHaveLength(8);
  });

  it("caps the requests in flight to the registry host: never more than N at once, through a counting proxy", async () => {
    const proxy = await startFaultProxy({ target: env.reg.url, rules: [{ path: /\/blobs\//, delayMs: 30, count: 1000 }] });
    try {
      const ref = img.reference.replace(env.reg.host, proxy.host);
      for (const [perHost, dir] of [[1, "ph-proxy-1"], [3, "ph-proxy-3"]] as const) {
        proxy.resetPeak();
        const r = await runCli(["pull", ref, "--all-platforms", "--concurrency", "16", "--per-host", String(perHost), "--store", join(env.tmp.dir, dir), "--json"]);
        expect(r.code, r.stderr).toBe(0);
        expect(proxy.requests.filter((q) => q.path.includes("/blobs/")).length).toBeGreaterThanOrEqual(8);
        expect(proxy.peakInFlight).toBeLessThanOrEqual(perHost);
        proxy.requests.length = 0;
      }
      // Without the flag the same pull has more at once (the cap above is the flag's doing).
      proxy.resetPeak();
      const free = await runCli(["pull", ref, "--all-platforms", "--concurrency", "16", "--store", join(env.tmp.dir, "ph-proxy-free"), "--json"]);
      expect(free.code, free.stderr).toBe(0);
      expect(proxy.peakInFlight).toBeGreaterThan(3);
    } finally {
      await proxy.stop();
    }
  });

  it("rejects a value that is not a positive integer with a usage error (exit 2)", async () => {
    for (const bad of ["0", "-1", "two", "1.5", "1e3", "0x10", " 4", "99999999999999999999", "1025"]) {
      const r = await runCli(["resolve", img.reference, "--per-host", bad]);
      expect(r.code, `${bad}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toContain("--per-host");
    }
  });
});
