import { describe, expect, it } from "vitest";
import type { Descriptor, Platform } from "./descriptor.ts";
import { digestOf } from "./digest.ts";
import { FerryError } from "./errors.ts";
import { MediaTypes } from "./media-types.ts";
import {
  defaultPlatform,
  formatPlatform,
  normalizePlatform,
  parsePlatform,
  platformMatcher,
  selectManifests,
} from "./platform.ts";

const host = defaultPlatform();

describe("parsePlatform", () => {
  it.each<[string, Platform]>([
    ["linux/amd64", { os: "linux", architecture: "amd64" }],
    ["linux/arm64", { os: "linux", architecture: "arm64", variant: "v8" }],
    ["linux/arm64/v8", { os: "linux", architecture: "arm64", variant: "v8" }],
    ["linux/aarch64", { os: "linux", architecture: "arm64", variant: "v8" }],
    ["linux/arm", { os: "linux", architecture: "arm", variant: "v7" }],
    ["linux/arm/v6", { os: "linux", architecture: "arm", variant: "v6" }],
    ["linux/arm/7", { os: "linux", architecture: "arm", variant: "v7" }],
    ["linux/armhf", { os: "linux", architecture: "arm", variant: "v7" }],
    ["linux/armel", { os: "linux", architecture: "arm", variant: "v6" }],
    ["Linux/X86_64", { os: "linux", architecture: "amd64" }],
    ["linux/x86-64", { os: "linux", architecture: "amd64" }],
    ["linux/amd64/v1", { os: "linux", architecture: "amd64" }],
    ["linux/amd64/v3", { os: "linux", architecture: "amd64", variant: "v3" }],
    ["linux/i686", { os: "linux", architecture: "386" }],
    ["linux/ppc64le", { os: "linux", architecture: "ppc64le" }],
    ["linux/riscv64", { os: "linux", architecture: "riscv64" }],
    ["linux/s390x", { os: "linux", architecture: "s390x" }],
    ["macos/arm64", { os: "darwin", architecture: "arm64", variant: "v8" }],
    ["windows(10.0.17763.1234)/amd64", { os: "windows", "os.version": "10.0.17763.1234", architecture: "amd64" }],
    [" linux/amd64 ", { os: "linux", architecture: "amd64" }],
    // Unknown but well-formed names pass through (new architectures should not need a release).
    ["plan10/weird/x", { os: "plan10", architecture: "weird", variant: "x" }],
  ])("%s", (spec, want) => {
    expect(parsePlatform(spec)).toEqual(want);
  });

  it("fills a lone os or architecture from the host", () => {
    expect(parsePlatform("arm64")).toEqual({ os: host.os, architecture: "arm64", variant: "v8" });
    expect(parsePlatform("aarch64").architecture).toBe("arm64");
    expect(parsePlatform("windows")).toMatchObject({ os: "windows", architecture: host.architecture });
  });

  it.each(["", "/", "linux/", "/amd64", "linux//v7", "a/b/c/d", "linux/amd 64", "linux/amd64/v1/", "frobnicate", "linux(1)(2)/amd64"])(
    "rejects %j with InvalidArgument",
    (spec) => {
      try {
        parsePlatform(spec);
        expect.unreachable();
      } catch (err) {
        expect(err).toBeInstanceOf(FerryError);
        expect((err as FerryError).code).toBe("InvalidArgument");
      }
    },
  );

  it("round-trips through formatPlatform", () => {
    for (const s of ["linux/amd64", "linux/arm64/v8", "linux/arm/v6", "windows(10.0.17763)/amd64"]) {
      expect(formatPlatform(parsePlatform(s))).toBe(s);
    }
    expect(formatPlatform({ os: "linux", architecture: "arm64" })).toBe("linux/arm64");
  });
});

describe("normalizePlatform", () => {
  it("keeps other members and does not mutate its input", () => {
    const p: Platform = { os: "Linux", architecture: "aarch64", "os.features": ["f"], features: ["sse4"] };
    const n = normalizePlatform(p);
    expect(n).toEqual({ os: "linux", architecture: "arm64", variant: "v8", "os.features": ["f"], features: ["sse4"] });
    expect(p.architecture).toBe("aarch64");
  });

  it("drops an empty variant", () => {
    expect(normalizePlatform({ os: "linux", architecture: "amd64", variant: "" })).toEqual({ os: "linux", architecture: "amd64" });
  });
});

describe("defaultPlatform", () => {
  it("maps Node's names to OCI names", () => {
    const p = defaultPlatform();
    expect(p.os).not.toBe("win32");
    expect(["x64", "ia32"]).not.toContain(p.architecture);
    if (process.platform === "linux") expect(p.os).toBe("linux");
    if (process.arch === "x64") expect(p.architecture).toBe("amd64");
    if (process.arch === "arm64") expect(p).toMatchObject({ architecture: "arm64", variant: "v8" });
    expect(normalizePlatform(p)).toEqual(p);
  });
});

describe("platformMatcher", () => {
  const P = (s: string): Platform => parsePlatform(s);

  it.each<[string, string, boolean]>([
    // spec, candidate, match (compatible mode, the default)
    ["linux/amd64", "linux/amd64", true],
    ["linux/amd64", "linux/386", true],
    ["linux/amd64", "linux/amd64/v2", false],
    ["linux/amd64/v3", "linux/amd64/v2", true],
    ["linux/amd64/v3", "linux/amd64", true],
    ["linux/amd64", "windows/amd64", false],
    ["linux/amd64", "linux/arm64", false],
    ["linux/arm64", "linux/arm64/v8", true],
    ["linux/arm64", "linux/arm/v7", true],
    ["linux/arm64", "linux/arm/v5", true],
    ["linux/arm64", "linux/arm64/v9", false],
    ["linux/arm64/v9", "linux/arm64", true],
    ["linux/arm64/v8.2", "linux/arm64", true],
    ["linux/arm/v7", "linux/arm/v6", true],
    ["linux/arm/v7", "linux/arm/v8", false],
    ["linux/arm/v6", "linux/arm/v7", false],
    ["linux/386", "linux/amd64", false],
    ["windows(10.0.17763.100)/amd64", "windows(10.0.17763.2000)/amd64", true],
    ["windows(10.0.17763.100)/amd64", "windows(10.0.20348.1)/amd64", false],
    ["windows(10.0.17763.100)/amd64", "windows/amd64", true],
  ])("%s matches %s: %s", (spec, candidate, want) => {
    expect(platformMatcher(spec).match(P(candidate))).toBe(want);
  });

  it("matches raw index platforms (unnormalised spellings) against normalised specs", () => {
    const m = platformMatcher("linux/arm64/v8");
    expect(m.match({ os: "linux", architecture: "arm64" })).toBe(true);
    expect(m.match({ os: "linux", architecture: "aarch64" })).toBe(true);
    expect(platformMatcher({ os: "linux", architecture: "x86_64" }).match({ os: "linux", architecture: "amd64" })).toBe(true);
  });

  it("strict mode accepts only the platform itself", () => {
    const m = platformMatcher("linux/amd64", { compatible: false });
    expect(m.match(P("linux/amd64"))).toBe(true);
    expect(m.match(P("linux/386"))).toBe(false);
    expect(platformMatcher("linux/arm64", { compatible: false }).match(P("linux/arm/v7"))).toBe(false);
  });

  it("prefers exact over compatible, newer over older", () => {
    const m = platformMatcher("linux/arm64");
    const candidates = ["linux/arm/v5", "linux/arm/v7", "linux/arm64", "linux/arm/v6"].map(P);
    expect([...candidates].sort(m.compare).map(formatPlatform)).toEqual([
      "linux/arm64/v8",
      "linux/arm/v7",
      "linux/arm/v6",
      "linux/arm/v5",
    ]);
    expect(m.less(P("linux/arm64"), P("linux/arm/v7"))).toBe(true);
    expect(m.less(P("linux/arm/v7"), P("linux/arm64"))).toBe(false);
    expect(m.less(P("linux/arm64"), P("linux/arm64"))).toBe(false);
    // A non-matching platform ranks after any matching one.
    expect(m.less(P("linux/arm/v5"), P("linux/s390x"))).toBe(true);
    expect(m.less(P("linux/s390x"), P("linux/arm/v5"))).toBe(false);
  });

  it("orders a list of specs by position, compatible ones after their own spec", () => {
    const m = platformMatcher(["linux/arm64", "linux/amd64"]);
    expect(m.match(P("linux/386"))).toBe(true);
    const sorted = ["linux/386", "linux/amd64", "linux/arm/v7", "linux/arm64"].map(P).sort(m.compare);
    expect(sorted.map(formatPlatform)).toEqual(["linux/arm64/v8", "linux/arm/v7", "linux/amd64", "linux/386"]);
  });

  it('"all" matches everything and ranks the host first', () => {
    const m = platformMatcher("all");
    expect(m.match(P("plan9/mips"))).toBe(true);
    expect(m.less(host, P("plan9/mips"))).toBe(true);
  });

  it("a predicate matches by itself and states no preference", () => {
    const m = platformMatcher((p) => p.os === "windows");
    expect(m.match(P("windows/amd64"))).toBe(true);
    expect(m.match(P("linux/amd64"))).toBe(false);
    expect(m.less(P("windows/amd64"), P("windows/arm64"))).toBe(false);
    expect(m.compare(P("windows/amd64"), P("windows/arm64"))).toBe(0);
  });

  it("rejects a bad specifier when built", () => {
    expect(() => platformMatcher("linux//")).toThrow(FerryError);
  });
});

describe("selectManifests", () => {
  const d = (n: string, platform?: string): Descriptor => ({
    mediaType: MediaTypes.OciManifest,
    digest: digestOf(n),
    size: 1,
    ...(platform ? { platform: platform.includes("aarch64") ? { os: "linux", architecture: "aarch64" } : parsePlatform(platform) } : {}),
  });
  const manifests = [
    d("amd64", "linux/amd64"),
    d("arm7", "linux/arm/v7"),
    d("attestation"),
    d("arm64", "linux/aarch64"),
    d("s390x", "linux/s390x"),
    d("arm64-dup", "linux/arm64"),
  ];

  it("picks the best match first, stable among equals, without platform-less entries", () => {
    const got = selectManifests(manifests, "linux/arm64");
    expect(got.map((x) => x.digest)).toEqual([digestOf("arm64"), digestOf("arm64-dup"), digestOf("arm7")]);
  });

  it("returns nothing when nothing matches", () => {
    expect(selectManifests(manifests, "windows/amd64")).toEqual([]);
  });

  it('"all" returns every entry, platform-less ones last', () => {
    const got = selectManifests(manifests, "all");
    expect(got).toHaveLength(manifests.length);
    expect(got.at(-1)?.digest).toBe(digestOf("attestation"));
  });

  it("accepts a prebuilt matcher", () => {
    const got = selectManifests(manifests, platformMatcher("linux/amd64", { compatible: false }));
    expect(got.map((x) => x.digest)).toEqual([digestOf("amd64")]);
  });
});
