/**
 * Hostile input: random mutations of valid documents must either parse or fail with
 * InvalidManifest — never a TypeError or another crash — and a success must still satisfy the
 * invariants callers rely on. Deterministic (seeded) so a failure reproduces.
 */
import { describe, expect, it } from "vitest";
import { childrenOf } from "./children.ts";
import { digestOf } from "./digest.ts";
import { FerryError } from "./errors.ts";
import { MediaTypes } from "./media-types.ts";
import { parseImageConfig, parseManifest } from "./validate-manifest.ts";

function rng(seed: number): () => number {
  // mulberry32: tiny, good enough to spread mutations.
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEEDS = {
  manifest: {
    schemaVersion: 2,
    mediaType: MediaTypes.OciManifest,
    config: { mediaType: MediaTypes.OciConfig, digest: digestOf("c"), size: 2 },
    layers: [
      { mediaType: MediaTypes.OciLayerGzip, digest: digestOf("a"), size: 1, urls: ["https://x/y"], annotations: { k: "v" } },
      { mediaType: MediaTypes.OciEmpty, digest: digestOf("{}"), size: 2, data: "e30=" },
    ],
    subject: { mediaType: MediaTypes.OciManifest, digest: digestOf("s"), size: 3 },
    annotations: { "a.b": "c" },
  },
  index: {
    schemaVersion: 2,
    mediaType: MediaTypes.OciIndex,
    manifests: [
      { mediaType: MediaTypes.OciManifest, digest: digestOf("m"), size: 9, platform: { os: "linux", architecture: "arm64", variant: "v8", "os.features": ["f"] } },
    ],
    annotations: { x: "y" },
  },
  config: {
    architecture: "amd64",
    os: "linux",
    created: "2024-01-01T00:00:00Z",
    config: { Env: ["A=B"], Cmd: null, ExposedPorts: { "80/tcp": {} }, Labels: { a: "b" }, ArgsEscaped: true },
    rootfs: { type: "layers", diff_ids: [digestOf("d")] },
    history: [{ created_by: "x", empty_layer: true }],
  },
} as const;

const WEIRD: unknown[] = [
  null, 0, -1, 1.5, 2, 2 ** 53, "", "x", "sha256:zz", "a/b", [], [1], ["s"], {}, { a: 1 }, true, false,
  digestOf("z"), "application/vnd.oci.image.index.v1+json", "\u0000", "__proto__",
];

type Node = Record<string, unknown> | unknown[];

function mutate(doc: unknown, r: () => number): unknown {
  const copy = structuredClone(doc);
  const steps = 1 + Math.floor(r() * 3);
  for (let s = 0; s < steps; s++) {
    // Pick a random container along a random path, then change one member of it.
    let node = copy as Node;
    while (r() < 0.6) {
      const keys = Object.keys(node);
      if (keys.length === 0) break;
      const next = (node as Record<string, unknown>)[keys[Math.floor(r() * keys.length)] as string];
      if (typeof next !== "object" || next === null) break;
      node = next as Node;
    }
    const keys = Object.keys(node);
    const pick = r();
    const weird = structuredClone(WEIRD[Math.floor(r() * WEIRD.length)]);
    if (Array.isArray(node)) {
      if (pick < 0.3 && node.length > 0) node.splice(Math.floor(r() * node.length), 1);
      else if (pick < 0.6) node.push(weird);
      else if (node.length > 0) node[Math.floor(r() * node.length)] = weird;
    } else if (pick < 0.3 && keys.length > 0) {
      delete node[keys[Math.floor(r() * keys.length)] as string];
    } else if (pick < 0.5) {
      node[["manifests", "layers", "config", "mediaType", "platform", "data", "x.y"][Math.floor(r() * 7)] as string] = weird;
    } else if (keys.length > 0) {
      node[keys[Math.floor(r() * keys.length)] as string] = weird;
    }
  }
  return copy;
}

function expectOnlyInvalidManifest(fn: () => void): boolean {
  try {
    fn();
    return true;
  } catch (err) {
    if (!(err instanceof FerryError) || err.code !== "InvalidManifest") throw err;
    expect(typeof err.details.field).toBe("string");
    expect(err.message.startsWith(`${err.details.field as string}: `)).toBe(true);
    return false;
  }
}

describe("validator under random mutation", () => {
  it.each(["manifest", "index"] as const)("%s documents: parse or InvalidManifest, never a crash", (which) => {
    const r = rng(which === "manifest" ? 1 : 2);
    let ok = 0;
    let bad = 0;
    for (let i = 0; i < 3000; i++) {
      const doc = mutate(SEEDS[which], r);
      const bytes = JSON.stringify(doc);
      const hint = r() < 0.3 ? (r() < 0.5 ? MediaTypes.OciManifest : MediaTypes.OciIndex) : undefined;
      const passed = expectOnlyInvalidManifest(() => {
        const parsed = parseManifest(bytes, hint === undefined ? {} : { mediaType: hint });
        // Invariants of a success: the arrays callers iterate exist and every child is well-formed.
        const kids = childrenOf({ mediaType: parsed.mediaType, digest: digestOf(bytes), size: bytes.length }, bytes);
        for (const k of kids) {
          expect(k.digest).toMatch(/^sha(256|512):[0-9a-f]+$/);
          expect(Number.isSafeInteger(k.size) && k.size >= 0).toBe(true);
          expect(typeof k.mediaType).toBe("string");
        }
      });
      if (passed) ok++;
      else bad++;
    }
    // The mutations must exercise both outcomes, or the test proves nothing.
    expect(ok).toBeGreaterThan(50);
    expect(bad).toBeGreaterThan(500);
  });

  it("configs: parse or InvalidManifest, never a crash", () => {
    const r = rng(3);
    let ok = 0;
    let bad = 0;
    for (let i = 0; i < 3000; i++) {
      const bytes = JSON.stringify(mutate(SEEDS.config, r));
      if (expectOnlyInvalidManifest(() => parseImageConfig(bytes))) ok++;
      else bad++;
    }
    expect(ok).toBeGreaterThan(50);
    expect(bad).toBeGreaterThan(500);
  });

  it("arbitrary byte strings never crash the parser", () => {
    const r = rng(4);
    for (let i = 0; i < 2000; i++) {
      const len = Math.floor(r() * 64);
      const bytes = new Uint8Array(len);
      for (let j = 0; j < len; j++) bytes[j] = Math.floor(r() * 256);
      expect(expectOnlyInvalidManifest(() => parseManifest(bytes))).toBe(false);
    }
  });
});
