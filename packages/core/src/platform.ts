/**
 * Platforms: parse `os/arch[/variant]` specifiers, normalise the many spellings of an
 * architecture, and match / rank the platforms of an index's manifests so a caller can pick
 * the best one for a host.
 *
 * Normal form (what {@link normalizePlatform} returns and what matching compares):
 * lowercase os and architecture; `x86_64`/`x86-64` → `amd64` (variant `v1` dropped: it is the
 * baseline); `i386`…`i686`/`x86` → `386`; `aarch64` → `arm64`, whose variant defaults to `v8`;
 * `armhf` → `arm/v7`, `armel` → `arm/v6`, `arm` defaults to `v7`; bare variant numbers gain a
 * `v` (`arm/7` → `arm/v7`); `macos` → `darwin`.
 */
import { InvalidArgumentError } from "./errors.ts";
import type { Descriptor, Platform } from "./descriptor.ts";
import { endianness } from "node:os";

/** What selects platforms: a specifier, a platform, a list of either (first is best), every platform, or a predicate. */
export type PlatformSpec = string | Platform | readonly (string | Platform)[] | "all" | ((p: Platform) => boolean);

export interface PlatformMatcher {
  /** True when an image for `p` can run where this matcher describes. */
  match(p: Platform): boolean;
  /**
   * True when `a` is preferred over `b` (both are usually already matching). Earlier specs in a
   * list win; within one spec an exact platform beats a compatible one (arm64/v8 before arm/v7,
   * amd64/v3 before amd64/v2 before 386). Non-matching platforms rank after matching ones.
   * Ranks are cached per platform object: do not mutate a platform between calls.
   */
  less(a: Platform, b: Platform): boolean;
  /** `Array.prototype.sort` comparator built on {@link less}: best first. */
  compare(a: Platform, b: Platform): number;
}

export interface PlatformMatcherOptions {
  /**
   * Also accept platforms the requested one can run: older variants of the same architecture
   * and its 32-bit sibling (amd64 → 386, arm64 → arm/v8…v5, arm/v7 → arm/v6, v5).
   * Default: true. Ignored for predicates and `"all"`.
   */
  compatible?: boolean;
}

const KNOWN_OS = new Set([
  "aix", "android", "darwin", "dragonfly", "freebsd", "hurd", "illumos", "ios", "js", "linux",
  "netbsd", "openbsd", "plan9", "solaris", "wasip1", "windows", "zos",
]);

const KNOWN_ARCH = new Set([
  "386", "amd64", "amd64p32", "arm", "armbe", "arm64", "arm64be", "loong64", "mips", "mipsle",
  "mips64", "mips64le", "mips64p32", "mips64p32le", "ppc", "ppc64", "ppc64le", "riscv", "riscv64",
  "s390", "s390x", "sparc", "sparc64", "wasm",
]);

/** Spellings that name a known architecture after normalisation (user input, `uname -m`). */
const ARCH_ALIASES: Record<string, { architecture: string; variant?: string }> = {
  x86_64: { architecture: "amd64" },
  "x86-64": { architecture: "amd64" },
  x64: { architecture: "amd64" },
  i386: { architecture: "386" },
  i486: { architecture: "386" },
  i586: { architecture: "386" },
  i686: { architecture: "386" },
  x86: { architecture: "386" },
  ia32: { architecture: "386" },
  aarch64: { architecture: "arm64" },
  armhf: { architecture: "arm", variant: "v7" },
  armel: { architecture: "arm", variant: "v6" },
  ppc64el: { architecture: "ppc64le" },
  mips64el: { architecture: "mips64le" },
  mipsel: { architecture: "mipsle" },
};

const COMPONENT_RE = /^[A-Za-z0-9_.-]+$/;

/**
 * Parse a specifier: `os`, `arch`, `os/arch` or `os/arch/variant`; the os may carry a version
 * as `os(version)`, e.g. `windows(10.0.17763)/amd64`. A lone component is an os when it is a
 * known one (architecture from {@link defaultPlatform}), otherwise an architecture (os from
 * {@link defaultPlatform}). Returns the normalised platform; throws `InvalidArgument`.
 */
export function parsePlatform(specifier: string): Platform {
  const s = specifier.trim();
  const m = /^([^/()]*)(?:\(([^()]*)\))?((?:\/[^/]*)*)$/.exec(s);
  const head = m?.[1] ?? "";
  const rest = (m?.[3] ?? "").split("/").slice(1);
  const parts = [head, ...rest];
  if (!m || parts.length > 3 || parts.some((p) => !COMPONENT_RE.test(p))) {
    throw new InvalidArgumentError(
      `invalid platform ${JSON.stringify(specifier)}: want os, arch, os/arch or os/arch/variant`,
      { details: { platform: specifier } },
    );
  }
  const osVersion = m[2];
  const withVersion = (p: Platform): Platform => (osVersion ? { ...p, "os.version": osVersion } : p);
  if (parts.length === 1) {
    const one = head.toLowerCase();
    const asOs = one === "macos" ? "darwin" : one;
    if (KNOWN_OS.has(asOs)) {
      const host = defaultPlatform();
      return withVersion(normalizePlatform({ os: asOs, architecture: host.architecture, ...variantOf(host) }));
    }
    if (osVersion === undefined && isKnownArchitecture(one)) {
      return normalizePlatform({ os: defaultPlatform().os, architecture: one });
    }
    throw new InvalidArgumentError(`invalid platform ${JSON.stringify(specifier)}: unknown os or architecture`, {
      details: { platform: specifier },
    });
  }
  const [os, architecture, variant] = parts as [string, string, string?];
  return withVersion(normalizePlatform({ os, architecture, ...(variant === undefined ? {} : { variant }) }));
}

/** `os/arch[/variant]`, with `os(version)` when `os.version` is set; the inverse of {@link parsePlatform}. */
export function formatPlatform(p: Platform): string {
  const os = p["os.version"] ? `${p.os}(${p["os.version"]})` : p.os;
  return p.variant ? `${os}/${p.architecture}/${p.variant}` : `${os}/${p.architecture}`;
}

/** The normal form described at the top of this file. Other members are kept unchanged. */
export function normalizePlatform(p: Platform): Platform {
  const os = p.os.toLowerCase();
  let architecture = p.architecture.toLowerCase();
  let variant = p.variant?.toLowerCase() || undefined;
  const alias = ARCH_ALIASES[architecture];
  if (alias) {
    architecture = alias.architecture;
    if (alias.variant !== undefined) variant = alias.variant;
  }
  if (variant !== undefined && /^\d/.test(variant)) variant = `v${variant}`;
  switch (architecture) {
    case "amd64":
      if (variant === "v1") variant = undefined;
      break;
    case "arm64":
      if (variant === undefined || variant === "v8.0") variant = "v8";
      break;
    case "arm":
      variant ??= "v7";
      break;
  }
  const out: Platform = { ...p, os: os === "macos" ? "darwin" : os, architecture };
  if (variant === undefined) delete out.variant;
  else out.variant = variant;
  return out;
}

/** The platform of this process, from `process.platform` and `process.arch` (normalised). */
export function defaultPlatform(): Platform {
  const osMap: Partial<Record<NodeJS.Platform, string>> = { win32: "windows", sunos: "solaris", cygwin: "windows" };
  const os = osMap[process.platform] ?? process.platform;
  const archMap: Record<string, string> = {
    x64: "amd64",
    ia32: "386",
    ppc64: endianness() === "LE" ? "ppc64le" : "ppc64",
    mipsel: "mipsle",
    mips64el: "mips64le",
  };
  const architecture = archMap[process.arch] ?? process.arch;
  let variant: string | undefined;
  if (architecture === "arm") {
    // Node records the ARM version it was built for (6 or 7).
    const v = (process.config.variables as Record<string, unknown>).arm_version;
    if (typeof v === "string" || typeof v === "number") variant = `v${v}`;
  }
  return normalizePlatform({ os, architecture, ...(variant ? { variant } : {}) });
}

/** Build a matcher; see {@link PlatformSpec}. Specifier strings are parsed with {@link parsePlatform}. */
export function platformMatcher(spec: PlatformSpec, options: PlatformMatcherOptions = {}): PlatformMatcher {
  return rankedMatcher(spec, options);
}

function rankedMatcher(spec: PlatformSpec, options: PlatformMatcherOptions): RankedMatcher {
  if (typeof spec === "function") {
    // A predicate states no preference: ties keep the index order under a stable sort.
    return build((p) => (spec(p) ? 0 : -1));
  }
  if (spec === "all") {
    // Everything matches; the host's platforms still rank first so "all" then "best" works.
    const host = rankedMatcher(defaultPlatform(), {});
    return build((p) => {
      const r = host.rank(p);
      return r < 0 ? Number.MAX_SAFE_INTEGER : r;
    });
  }
  const specs = (typeof spec === "string" || !Array.isArray(spec) ? [spec] : spec) as readonly (string | Platform)[];
  const compatible = options.compatible ?? true;
  // One flat preference list: each spec followed by what it can also run.
  const wanted: Platform[] = [];
  for (const s of specs) {
    const p = typeof s === "string" ? parsePlatform(s) : normalizePlatform(s);
    wanted.push(...(compatible ? compatibleWith(p) : [p]));
  }
  return build((candidate) => {
    const c = normalizePlatform(candidate);
    return wanted.findIndex((w) => samePlatform(w, c));
  });
}

/**
 * The descriptors of `manifests` whose platform matches, best first (stable among equals).
 * Descriptors without a platform (attestations, artifacts) are left out unless `spec` is `"all"`,
 * in which case they come last.
 */
export function selectManifests(
  manifests: readonly Descriptor[],
  spec: PlatformSpec | PlatformMatcher,
): Descriptor[] {
  const all = spec === "all";
  let sorted: Descriptor[];
  if (isMatcher(spec)) {
    sorted = manifests
      .filter((d) => d.platform !== undefined && spec.match(d.platform))
      .map((d, i) => ({ d, i }))
      .sort((x, y) => spec.compare(x.d.platform as Platform, y.d.platform as Platform) || x.i - y.i)
      .map((x) => x.d);
  } else {
    // Rank each platform once (normalising is the costly part), then sort by rank.
    const matcher = rankedMatcher(spec, {});
    sorted = manifests
      .map((d, i) => ({ d, i, r: d.platform === undefined ? -1 : matcher.rank(d.platform) }))
      .filter((x) => x.r >= 0)
      .sort((x, y) => x.r - y.r || x.i - y.i)
      .map((x) => x.d);
  }
  return all ? [...sorted, ...manifests.filter((d) => d.platform === undefined)] : sorted;
}

// ---- internals ----

interface RankedMatcher extends PlatformMatcher {
  /** Position in the preference list, -1 when not matching. */
  rank(p: Platform): number;
}

function build(rank: (p: Platform) => number): RankedMatcher {
  // Sorting calls less() O(n log n) times on the same objects; rank each object once.
  const cache = new WeakMap<Platform, number>();
  const key = (p: Platform): number => {
    let k = cache.get(p);
    if (k === undefined) {
      const r = rank(p);
      k = r < 0 ? Number.POSITIVE_INFINITY : r;
      cache.set(p, k);
    }
    return k;
  };
  return {
    rank,
    match: (p) => rank(p) >= 0,
    less: (a, b) => key(a) < key(b),
    compare: (a, b) => {
      const ka = key(a);
      const kb = key(b);
      return ka === kb ? 0 : ka < kb ? -1 : 1;
    },
  };
}

function isMatcher(v: unknown): v is PlatformMatcher {
  return typeof v === "object" && v !== null && !Array.isArray(v) && typeof (v as PlatformMatcher).match === "function";
}

function isKnownArchitecture(a: string): boolean {
  return KNOWN_ARCH.has(a) || a in ARCH_ALIASES;
}

function variantOf(p: Platform): { variant?: string } {
  return p.variant ? { variant: p.variant } : {};
}

/** Equal in normal form; os.version is compared on its first three parts (a Windows build). */
function samePlatform(want: Platform, got: Platform): boolean {
  if (want.os !== got.os || want.architecture !== got.architecture || want.variant !== got.variant) return false;
  const wv = want["os.version"];
  const gv = got["os.version"];
  if (wv === undefined || gv === undefined) return true;
  return build3(wv) === build3(gv);
}

function build3(v: string): string {
  return v.split(".").slice(0, 3).join(".");
}

/** `p` first, then the platforms an image for which still runs on a `p` host, best first. */
function compatibleWith(p: Platform): Platform[] {
  const out: Platform[] = [p];
  const base = { ...p };
  delete base.variant;
  const level = (v: string | undefined): number => Number.parseInt((v ?? "").replace(/^v/, ""), 10);
  switch (p.architecture) {
    case "amd64": {
      // amd64 microarchitecture levels: v3 runs v2 and v1 (v1 has no variant in normal form).
      const n = level(p.variant);
      for (let v = Number.isNaN(n) ? 0 : n - 1; v >= 1; v--) {
        out.push(v === 1 ? { ...base } : { ...base, variant: `v${v}` });
      }
      out.push({ ...base, architecture: "386" });
      break;
    }
    case "arm64": {
      // arm64 v8.2 or v9 runs v8 images; 64-bit ARM cores usually run 32-bit ARM too.
      const n = level(p.variant);
      if (!Number.isNaN(n) && n >= 8 && p.variant !== "v8") out.push({ ...base, variant: "v8" });
      for (let v = 8; v >= 5; v--) out.push({ ...base, architecture: "arm", variant: `v${v}` });
      break;
    }
    case "arm": {
      const n = level(p.variant);
      if (!Number.isNaN(n)) for (let v = n - 1; v >= 5; v--) out.push({ ...base, variant: `v${v}` });
      break;
    }
  }
  return out;
}
