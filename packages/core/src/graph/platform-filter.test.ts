import { describe, expect, it } from "vitest";
import type { Descriptor, Platform } from "../descriptor.ts";
import { digestOf } from "../digest.ts";
import { MediaTypes } from "../media-types.ts";
import { platformMatcher } from "../platform.ts";
import type { SkipReason } from "../status/events.ts";
import { byMediaType, filterChildren, handlers, type Handler, type WalkContext } from "./handler.ts";
import { filterPlatforms, limitManifests, selectPlatform } from "./platform-filter.ts";

const index: Descriptor = { mediaType: MediaTypes.OciIndex, digest: digestOf("i"), size: 1 };
function m(p: Platform | undefined, name: string): Descriptor {
  return { mediaType: MediaTypes.OciManifest, digest: digestOf(name), size: 1, ...(p ? { platform: p } : {}) };
}
const amd64 = m({ os: "linux", architecture: "amd64" }, "amd64");
const arm64 = m({ os: "linux", architecture: "arm64", variant: "v8" }, "arm64");
const armv7 = m({ os: "linux", architecture: "arm", variant: "v7" }, "armv7");
const attestation = m(undefined, "att");
const kids: Handler = async () => [amd64, armv7, arm64, attestation];

function ctx(): WalkContext & { skipped: Array<[string, SkipReason]> } {
  const skipped: Array<[string, SkipReason]> = [];
  return { signal: new AbortController().signal, content: async () => new Uint8Array(), skip: (d, r) => skipped.push([d.digest, r]), skipped };
}

describe("platform handlers", () => {
  it("filters by a matcher and keeps children without a platform", async () => {
    const c = ctx();
    const out = await filterPlatforms(kids, platformMatcher("linux/amd64"))(index, c);
    expect(out).toEqual([amd64, attestation]);
    expect(c.skipped).toEqual([[armv7.digest, "platform"], [arm64.digest, "platform"]]);
  });

  it("picks the single best of several compatible platforms", async () => {
    const c = ctx();
    const out = await selectPlatform(kids, platformMatcher("linux/arm64"))(index, c);
    // arm64 runs arm/v7 too, but arm64/v8 is the better match.
    expect(out).toEqual([arm64, attestation]);
    expect(c.skipped).toContainEqual([armv7.digest, "limit"]);
  });

  it("keeps the first preferences of a list with a limit", async () => {
    const c = ctx();
    const matcher = platformMatcher(["linux/arm/v7", "linux/amd64"], { compatible: false });
    const out = await limitManifests(filterPlatforms(kids, matcher), matcher, 2)(index, c);
    expect(out).toEqual([amd64, armv7, attestation]);
  });

  it("only filters index children", async () => {
    const manifest: Descriptor = { mediaType: MediaTypes.OciManifest, digest: digestOf("m"), size: 1 };
    const out = await selectPlatform(kids, platformMatcher("linux/s390x"))(manifest, ctx());
    expect(out).toHaveLength(4);
  });

  it("byMediaType picks a handler by the descriptor's media type, else the fallback, else no children", async () => {
    const layer: Descriptor = { mediaType: MediaTypes.OciLayerGzip, digest: digestOf("l"), size: 1 };
    const onlyAmd: Handler = async () => [amd64];
    const h = byMediaType({ [MediaTypes.OciIndex]: kids, [MediaTypes.OciManifest]: onlyAmd });
    expect(await h(index, ctx())).toEqual([amd64, armv7, arm64, attestation]);
    expect(await h(amd64, ctx())).toEqual([amd64]);
    expect(await h(layer, ctx())).toEqual([]);
    expect(await byMediaType({}, onlyAmd)(layer, ctx())).toEqual([amd64]);
  });

  it("a custom matcher object decides the match and the preference order", async () => {
    // Prefers arm over amd64, rejects arm64.
    const order = ["arm", "amd64"];
    const custom = {
      match: (p: Platform) => order.includes(p.architecture),
      less: (a: Platform, b: Platform) => order.indexOf(a.architecture) < order.indexOf(b.architecture),
    };
    const c = ctx();
    expect(await selectPlatform(kids, custom)(index, c)).toEqual([armv7, attestation]);
    expect(c.skipped).toEqual([[arm64.digest, "platform"], [amd64.digest, "limit"]]);
  });

  it("composes: handlers concatenates, filterChildren drops with a reason", async () => {
    const extra: Handler = async () => [attestation];
    const c = ctx();
    const out = await filterChildren(handlers(kids, extra), (d) => d.platform !== undefined)(index, c);
    expect(out).toEqual([amd64, armv7, arm64]);
    expect(c.skipped).toEqual([[attestation.digest, "filtered"], [attestation.digest, "filtered"]]);
  });
});
