/**
 * registryRoot: what a registry destination gets as the root when the source's root is an
 * index, decided before any byte moves, through nested indexes too.
 */
import { describe, expect, it } from "vitest";
import type { ContentStore } from "../content.ts";
import type { Descriptor, Platform } from "../descriptor.ts";
import { digestOf } from "../digest.ts";
import { NotFoundError } from "../errors.ts";
import { MediaTypes } from "../media-types.ts";
import { buildHandler } from "./options.ts";
import { registryRoot } from "./registry-root.ts";

const blobs = new Map<string, Uint8Array>();

function put(mediaType: string, doc: unknown, platform?: Platform): Descriptor {
  const bytes = Buffer.from(JSON.stringify(doc));
  const d: Descriptor = { mediaType, digest: digestOf(bytes), size: bytes.byteLength };
  blobs.set(d.digest, bytes);
  return platform ? { ...d, platform } : d;
}

let n = 0;
function manifest(platform?: Platform): Descriptor {
  const config = { mediaType: MediaTypes.OciConfig, digest: digestOf(`config ${n++}`), size: 2 };
  return put(MediaTypes.OciManifest, { schemaVersion: 2, mediaType: MediaTypes.OciManifest, config, layers: [] }, platform);
}

function index(children: Descriptor[], platform?: Platform): Descriptor {
  return put(MediaTypes.OciIndex, { schemaVersion: 2, mediaType: MediaTypes.OciIndex, manifests: children }, platform);
}

const amd64: Platform = { os: "linux", architecture: "amd64" };
const arm64: Platform = { os: "linux", architecture: "arm64" };
const s390x: Platform = { os: "linux", architecture: "s390x" };

async function rootFor(root: Descriptor, platform: string | string[], opts: { have?: Descriptor[]; platformLimit?: number } = {}): Promise<Descriptor> {
  const have = opts.have && new Set(opts.have.map((d) => d.digest));
  const store = have && ({
    info: async (digest: Descriptor["digest"]) => {
      if (!have.has(digest)) throw new NotFoundError(`no ${digest}`);
      return { digest, size: 1 };
    },
  } as unknown as ContentStore);
  return registryRoot({
    root,
    handler: buildHandler({ platform, ...(opts.platformLimit !== undefined ? { platformLimit: opts.platformLimit } : {}) }, "all"),
    signal: new AbortController().signal,
    load: async (d) => {
      const b = blobs.get(d.digest);
      if (!b) throw new NotFoundError(`no ${d.digest}`);
      return b;
    },
    ...(store ? { store } : {}),
  });
}

describe("registryRoot", () => {
  it("a flat index: one platform selected → that manifest alone; all → the index", async () => {
    const a = manifest(amd64);
    const b = manifest(arm64);
    const root = index([a, b]);
    expect((await rootFor(root, "linux/arm64")).digest).toBe(b.digest);
    expect((await rootFor(root, "all")).digest).toBe(root.digest);
  });

  it("a nested index partly kept: the one manifest left goes alone (it was pushed as an incomplete index)", async () => {
    const a = manifest(amd64);
    const b = manifest(arm64);
    const inner = index([a, b]);
    const root = index([inner]);
    const got = await rootFor(root, "linux/arm64");
    expect(got.digest).toBe(b.digest);
    expect(got.platform).toEqual(arm64);
    expect((await rootFor(root, "all")).digest).toBe(root.digest);
  });

  it("a nested index the selection keeps whole is one unit: it becomes the root", async () => {
    const a = manifest(amd64);
    const b = manifest(arm64);
    const attestation = manifest(); // no platform: kept with its siblings
    const forAmd = index([a], amd64);
    const forArm = index([b, attestation], arm64);
    const root = index([forAmd, forArm]);
    expect((await rootFor(root, "linux/arm64")).digest).toBe(forArm.digest);
  });

  it("a selection keeping several manifests across nested indexes, but not all, is refused up front", async () => {
    const inner = index([manifest(amd64), manifest(arm64), manifest(s390x)]);
    const root = index([inner]);
    await expect(rootFor(root, ["linux/amd64", "linux/arm64"], { platformLimit: 0 })).rejects.toMatchObject({
      code: "InvalidArgument",
      details: { kept: ["linux/amd64", "linux/arm64"] },
    });
  });

  it("a store source lacking a manifest inside a nested index kept whole: NotFound before anything moves", async () => {
    const a = manifest(amd64);
    const b = manifest(arm64);
    const inner = index([a, b]);
    const root = index([inner]);
    await expect(rootFor(root, "all", { have: [root, inner, b] })).rejects.toMatchObject({ code: "NotFound" });
    expect((await rootFor(root, "all", { have: [root, inner, a, b] })).digest).toBe(root.digest);
    // Selecting the platform the store holds pushes that image alone.
    expect((await rootFor(root, "linux/arm64", { have: [root, inner, b] })).digest).toBe(b.digest);
  });

  it("an index of per-platform indexes (no platform on them): the selected platform's index goes", async () => {
    const forAmd = index([manifest(amd64)]);
    const forArm = index([manifest(arm64)]);
    const root = index([forAmd, forArm]);
    expect((await rootFor(root, "linux/arm64")).digest).toBe(forArm.digest);
    await expect(rootFor(root, "linux/s390x")).rejects.toMatchObject({ code: "NotFound" });
  });

  it("an index going whole needs its entries without a platform in the store too", async () => {
    const a = manifest(amd64);
    const b = manifest(arm64);
    const attestation = manifest();
    const root = index([a, b, attestation]);
    await expect(rootFor(root, "all", { have: [root, a, b] })).rejects.toMatchObject({ code: "NotFound", details: { missing: [attestation.digest] } });
    expect((await rootFor(root, "all", { have: [root, a, b, attestation] })).digest).toBe(root.digest);
    // One platform alone leaves the attestation behind: not needed then.
    expect((await rootFor(root, "linux/amd64", { have: [root, a, b] })).digest).toBe(a.digest);
  });

  it("decides each index once however often it is listed, and stops on abort", async () => {
    // 8 levels, each index listing the level below 8 times: 8^7 paths to the one manifest.
    let cur = index([manifest(amd64)]);
    for (let level = 0; level < 7; level++) cur = index(Array.from({ length: 8 }, () => cur));
    let decided = 0;
    const handler = buildHandler({ platform: "all" }, "all");
    const got = await registryRoot({
      root: cur,
      handler: async (d, ctx) => {
        decided++;
        return handler(d, ctx);
      },
      signal: new AbortController().signal,
      load: async (d) => blobs.get(d.digest) as Uint8Array,
    });
    expect(got.digest).toBe(cur.digest);
    expect(decided).toBe(8);
    const ac = new AbortController();
    ac.abort();
    await expect(registryRoot({ root: cur, handler, signal: ac.signal, load: async (d) => blobs.get(d.digest) as Uint8Array })).rejects.toMatchObject({ code: "Aborted" });
  });

  it("indexes nested deeper than 8 levels are refused as InvalidManifest", async () => {
    let d = manifest(amd64);
    for (let i = 0; i < 10; i++) d = index([d]);
    await expect(rootFor(d, "linux/amd64")).rejects.toMatchObject({ code: "InvalidManifest" });
  });
});
