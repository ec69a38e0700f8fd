import { describe, expect, it } from "vitest";
import type { Descriptor } from "../descriptor.ts";
import { digestOf } from "../digest.ts";
import { NetworkError } from "../errors.ts";
import { MediaTypes } from "../media-types.ts";
import { dispatch } from "./dispatch.ts";
import type { Handler } from "./handler.ts";

function node(name: string, mediaType: string = MediaTypes.OciIndex): Descriptor {
  return { mediaType, digest: digestOf(name), size: name.length };
}

/** A graph given as parent → children; the handler reads it instead of manifest bytes. */
function graphHandler(edges: Map<string, Descriptor[]>): Handler {
  return async (d) => edges.get(d.digest) ?? [];
}

const load = async () => new Uint8Array();

describe("dispatch", () => {
  it("walks a deep tree with concurrency 1 without deadlocking, children before parents", async () => {
    // 40 nested indexes, each with one blob and the next index.
    const edges = new Map<string, Descriptor[]>();
    const chain = Array.from({ length: 40 }, (_, i) => node(`idx-${i}`));
    chain.forEach((d, i) => {
      const kids = [node(`blob-${i}`, MediaTypes.OciLayerGzip)];
      if (chain[i + 1]) kids.push(chain[i + 1]!);
      edges.set(d.digest, kids);
    });
    const left: string[] = [];
    let running = 0;
    let maxRunning = 0;
    await dispatch([chain[0]!], {
      handler: graphHandler(edges),
      load,
      manifestConcurrency: 1,
      blobConcurrency: 1,
      leave: async (d) => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        await new Promise((r) => setImmediate(r));
        left.push(d.digest);
        running--;
      },
    });
    expect(left).toHaveLength(80);
    // Every index is left after its blob and after the index below it.
    chain.forEach((d, i) => {
      expect(left.indexOf(d.digest)).toBeGreaterThan(left.indexOf(digestOf(`blob-${i}`)));
      if (chain[i + 1]) expect(left.indexOf(d.digest)).toBeGreaterThan(left.indexOf(chain[i + 1]!.digest));
    });
    expect(left[left.length - 1]).toBe(chain[0]!.digest);
    // One manifest slot plus one blob slot at most.
    expect(maxRunning).toBeLessThanOrEqual(2);
  });

  it("respects separate limits for manifests and blobs", async () => {
    const root = node("root");
    const ms = Array.from({ length: 6 }, (_, i) => node(`m${i}`, MediaTypes.OciManifest));
    const edges = new Map<string, Descriptor[]>([[root.digest, ms]]);
    ms.forEach((m, i) => edges.set(m.digest, Array.from({ length: 5 }, (_, j) => node(`b${i}-${j}`, MediaTypes.OciLayerGzip))));
    let blobs = 0;
    let maxBlobs = 0;
    let manifestsIn = 0;
    let maxManifests = 0;
    await dispatch([root], {
      handler: graphHandler(edges),
      load,
      manifestConcurrency: 2,
      blobConcurrency: 3,
      enter: async (d) => {
        if (d.mediaType === MediaTypes.OciManifest) {
          manifestsIn++;
          maxManifests = Math.max(maxManifests, manifestsIn);
          await new Promise((r) => setTimeout(r, 1));
          manifestsIn--;
        }
        return true;
      },
      leave: async (d) => {
        if (d.mediaType !== MediaTypes.OciLayerGzip) return;
        blobs++;
        maxBlobs = Math.max(maxBlobs, blobs);
        await new Promise((r) => setTimeout(r, 1));
        blobs--;
      },
    });
    expect(maxBlobs).toBe(3);
    expect(maxManifests).toBeLessThanOrEqual(2);
  });

  it("moves small blobs on their own limiter when smallBlobConcurrency is set", async () => {
    const root = node("root", MediaTypes.OciManifest);
    const big = (name: string): Descriptor => ({ ...node(name, MediaTypes.OciLayerGzip), size: 8 * 1024 * 1024 });
    const kids = [
      ...Array.from({ length: 12 }, (_, i) => node(`small-${i}`, MediaTypes.OciLayerGzip)),
      ...Array.from({ length: 4 }, (_, i) => big(`big-${i}`)),
    ];
    const edges = new Map<string, Descriptor[]>([[root.digest, kids]]);
    const inFlight = { small: 0, big: 0 };
    const max = { small: 0, big: 0 };
    await dispatch([root], {
      handler: graphHandler(edges),
      load,
      blobConcurrency: 1,
      smallBlobConcurrency: 5,
      leave: async (d) => {
        if (d.digest === root.digest) return;
        const k = d.size < 1024 * 1024 ? "small" : "big";
        inFlight[k]++;
        max[k] = Math.max(max[k], inFlight[k]);
        await new Promise((r) => setTimeout(r, 2));
        inFlight[k]--;
      },
    });
    expect(max.small).toBe(5);
    expect(max.big).toBe(1);
  });

  it("without smallBlobConcurrency, small blobs share the blob limit", async () => {
    const root = node("root", MediaTypes.OciManifest);
    const edges = new Map<string, Descriptor[]>([[root.digest, Array.from({ length: 8 }, (_, i) => node(`s-${i}`, MediaTypes.OciLayerGzip))]]);
    let n = 0;
    let maxN = 0;
    await dispatch([root], {
      handler: graphHandler(edges),
      load,
      blobConcurrency: 2,
      leave: async (d) => {
        if (d.digest === root.digest) return;
        n++;
        maxN = Math.max(maxN, n);
        await new Promise((r) => setTimeout(r, 2));
        n--;
      },
    });
    expect(maxN).toBe(2);
  });

  it("visits a shared child once", async () => {
    const root = node("root");
    const a = node("a", MediaTypes.OciManifest);
    const b = node("b", MediaTypes.OciManifest);
    const shared = node("shared", MediaTypes.OciLayerGzip);
    const edges = new Map([
      [root.digest, [a, b]],
      [a.digest, [shared]],
      [b.digest, [shared]],
    ]);
    const seen: string[] = [];
    await dispatch([root], { handler: graphHandler(edges), load, discover: (d) => seen.push(d.digest) });
    expect(seen.filter((d) => d === shared.digest)).toHaveLength(1);
    expect(seen).toHaveLength(4);
  });

  it.each([false, true])("fails with InvalidManifest when one digest is a manifest under one parent and a blob under another (blob first: %s)", async (blobFirst) => {
    const root = node("root");
    const y = node("y", MediaTypes.OciManifest);
    const asLayer: Descriptor = { ...y, mediaType: MediaTypes.OciLayerGzip };
    const x = node("x", MediaTypes.OciManifest);
    const j = node("j");
    const edges = new Map([
      [root.digest, blobFirst ? [x, j] : [j, x]],
      [x.digest, [asLayer]],
      [j.digest, [y]],
      [y.digest, [node("y-config", MediaTypes.OciConfig)]],
    ]);
    const left: string[] = [];
    const err = await dispatch([root], {
      handler: graphHandler(edges),
      load,
      manifestConcurrency: 1,
      blobConcurrency: 1,
      leave: async (d) => void left.push(d.digest),
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "InvalidManifest", details: { digest: y.digest } });
    expect(left).not.toContain(root.digest);
  });

  it("does not descend when enter says no", async () => {
    const root = node("root");
    const m = node("m", MediaTypes.OciManifest);
    const edges = new Map([
      [root.digest, [m]],
      [m.digest, [node("x", MediaTypes.OciLayerGzip)]],
    ]);
    const left: string[] = [];
    await dispatch([root], {
      handler: graphHandler(edges),
      load,
      enter: async (d) => d.digest !== m.digest,
      leave: async (d) => void left.push(d.digest),
    });
    expect(left).toEqual([root.digest]);
  });

  it("fails with the first error, aborts the others and waits for them", async () => {
    const root = node("root", MediaTypes.OciManifest);
    const bad = node("bad", MediaTypes.OciLayerGzip);
    const slow = node("slow", MediaTypes.OciLayerGzip);
    const edges = new Map([[root.digest, [slow, bad]]]);
    const boom = new NetworkError("boom");
    let slowSettled = false;
    let rootLeft = false;
    const p = dispatch([root], {
      handler: graphHandler(edges),
      load,
      leave: async (d, ctx) => {
        if (d.digest === root.digest) rootLeft = true;
        if (d.digest === bad.digest) throw boom;
        if (d.digest === slow.digest) {
          await new Promise<void>((_, reject) => ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason), { once: true })).finally(() => {
            slowSettled = true;
          });
        }
      },
    });
    await expect(p).rejects.toBe(boom);
    expect(slowSettled).toBe(true);
    expect(rootLeft).toBe(false);
  });

  it("rejects with Aborted when the caller's signal aborts", async () => {
    const root = node("root", MediaTypes.OciManifest);
    const edges = new Map([[root.digest, [node("x", MediaTypes.OciLayerGzip)]]]);
    const ac = new AbortController();
    const p = dispatch([root], {
      handler: graphHandler(edges),
      load,
      signal: ac.signal,
      leave: async (_d, ctx) => {
        ac.abort();
        await new Promise((r) => setImmediate(r));
        if (ctx.signal.aborted) throw ctx.signal.reason;
      },
    });
    await expect(p).rejects.toMatchObject({ code: "Aborted" });
  });
});
