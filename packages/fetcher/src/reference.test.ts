import { describe, expect, it } from "vitest";
import { FerryError } from "@ferry/core";
import { defaultScheme, familiarString, isLoopbackHost, parseReference, splitHostPort } from "./reference.ts";

const D = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const D512 = `sha512:${"ab".repeat(64)}`;

type Want = { registry: string; repository: string; tag?: string; digest?: string; apiHost?: string; str?: string };

const valid: Array<[string, Want]> = [
  ["alpine", { registry: "docker.io", repository: "library/alpine", tag: "latest", apiHost: "registry-1.docker.io", str: "docker.io/library/alpine:latest" }],
  ["alpine:3.20", { registry: "docker.io", repository: "library/alpine", tag: "3.20" }],
  [`alpine@${D}`, { registry: "docker.io", repository: "library/alpine", digest: D, str: `docker.io/library/alpine@${D}` }],
  [`alpine:3@${D}`, { registry: "docker.io", repository: "library/alpine", tag: "3", digest: D, str: `docker.io/library/alpine:3@${D}` }],
  [`alpine@${D512}`, { registry: "docker.io", repository: "library/alpine", digest: D512 }],
  ["bitnami/redis", { registry: "docker.io", repository: "bitnami/redis", tag: "latest" }],
  ["docker.io/alpine", { registry: "docker.io", repository: "library/alpine", tag: "latest" }],
  ["docker.io/library/alpine", { registry: "docker.io", repository: "library/alpine" }],
  ["index.docker.io/alpine", { registry: "docker.io", repository: "library/alpine", apiHost: "registry-1.docker.io" }],
  ["registry-1.docker.io/bitnami/redis:7", { registry: "docker.io", repository: "bitnami/redis", tag: "7" }],
  ["Docker.IO/alpine", { registry: "docker.io", repository: "library/alpine" }],
  ["ghcr.io/owner/app:v1.2.3", { registry: "ghcr.io", repository: "owner/app", tag: "v1.2.3", apiHost: "ghcr.io" }],
  ["ghcr.io/app", { registry: "ghcr.io", repository: "app", tag: "latest", str: "ghcr.io/app:latest" }],
  ["localhost/foo", { registry: "localhost", repository: "foo", tag: "latest" }],
  ["localhost:5000/foo/bar:baz", { registry: "localhost:5000", repository: "foo/bar", tag: "baz", apiHost: "localhost:5000" }],
  ["127.0.0.1:5000/demo:1", { registry: "127.0.0.1:5000", repository: "demo", tag: "1", str: "127.0.0.1:5000/demo:1" }],
  ["[::1]:5000/demo", { registry: "[::1]:5000", repository: "demo", tag: "latest", apiHost: "[::1]:5000" }],
  ["[::1]/demo:x", { registry: "[::1]", repository: "demo", tag: "x" }],
  ["[2001:db8::1]:443/a/b@" + D, { registry: "[2001:db8::1]:443", repository: "a/b", digest: D }],
  ["myhost:5000/x", { registry: "myhost:5000", repository: "x" }],
  ["My.Registry.example/x", { registry: "my.registry.example", repository: "x" }],
  ["reg-1.example.com/a/b/c/d", { registry: "reg-1.example.com", repository: "a/b/c/d" }],
  // Without '.', ':' or "localhost" the first component is a path, not a host.
  ["myhost/x", { registry: "docker.io", repository: "myhost/x" }],
  ["localhost", { registry: "docker.io", repository: "library/localhost", tag: "latest" }],
  // No slash: "foo:5000" is a tag, not a port.
  ["foo:5000", { registry: "docker.io", repository: "library/foo", tag: "5000" }],
  ["x/a.b_c__d-e---f", { registry: "docker.io", repository: "x/a.b_c__d-e---f" }],
  ["docker.io/a.b_c__d-e---f", { registry: "docker.io", repository: "library/a.b_c__d-e---f" }],
  ["x/y:_tag", { registry: "docker.io", repository: "x/y", tag: "_tag" }],
  ["x/y:T.a-g_9", { registry: "docker.io", repository: "x/y", tag: "T.a-g_9" }],
  [`x/y:${"t".repeat(128)}`, { registry: "docker.io", repository: "x/y", tag: "t".repeat(128) }],
  [`example.com/${"a".repeat(243)}`, { registry: "example.com", repository: "a".repeat(243) }],
  ["0/1", { registry: "docker.io", repository: "0/1" }],
];

describe("parseReference: valid", () => {
  it.each(valid)("%s", (input, want) => {
    const r = parseReference(input);
    expect(r.registry).toBe(want.registry);
    expect(r.repository).toBe(want.repository);
    expect(r.name).toBe(`${want.registry}/${want.repository}`);
    if ("tag" in want) expect(r.tag).toBe(want.tag);
    if ("digest" in want) expect(r.digest).toBe(want.digest);
    if ("digest" in want && !("tag" in want)) expect(r.tag).toBeUndefined();
    if (want.apiHost) expect(r.apiHost).toBe(want.apiHost);
    if (want.str) expect(r.toString()).toBe(want.str);
    expect(String(r)).toBe(r.toString());
    // Canonical form parses back to itself.
    expect(parseReference(r.toString()).toString()).toBe(r.toString());
  });
});

const invalid: Array<[string, string, RegExp]> = [
  ["empty", "", /empty reference/],
  ["uppercase repo", "Alpine", /lowercase/],
  ["uppercase after host", "ghcr.io/Owner/app", /lowercase/],
  ["uppercase first component (not a host)", "Foo/bar", /lowercase/],
  ["empty component", "ghcr.io//app", /empty path component/],
  ["trailing slash", "ghcr.io/app/", /empty path component/],
  ["leading slash", "/app", /empty path component/],
  ["host only", "ghcr.io/", /empty path component/],
  ["bad separator at start", "ghcr.io/-app", /bad path component/],
  ["bad separator at end", "ghcr.io/app_", /bad path component/],
  ["triple underscore", "ghcr.io/a___b", /bad path component/],
  ["double dot", "ghcr.io/a..b", /bad path component/],
  ["illegal char", "ghcr.io/a+b", /bad path component/],
  ["empty tag", "alpine:", /empty tag/],
  ["tag starting with dot", "alpine:.x", /bad tag/],
  ["tag starting with dash", "alpine:-x", /bad tag/],
  ["tag with illegal char", "alpine:a+b", /bad tag/],
  ["tag too long", `alpine:${"t".repeat(129)}`, /longer than 128/],
  ["empty digest", "alpine@", /empty digest/],
  ["bad digest alg", "alpine@md5:d41d8cd98f00b204e9800998ecf8427e", /bad digest/],
  ["short digest", "alpine@sha256:abc", /bad digest/],
  ["uppercase digest", `alpine@${D.toUpperCase().replace("SHA256", "sha256")}`, /bad digest/],
  ["two @", `alpine@${D}@${D}`, /bad digest/],
  ["name too long", `example.com/${"a".repeat(244)}`, /longer than 255/],
  ["docker hub name too long", `${"a".repeat(256)}`, /longer than 255/],
  ["whitespace", "alpine latest", /whitespace/],
  ["scheme", "https://ghcr.io/app", /scheme/],
  ["image id", "a".repeat(64), /image ID/],
  ["bad host label", "-bad.example/x", /bad registry host/],
  ["underscore in host", "a.b_c/x", /bad registry host/],
  ["bad port", "example.com:99999/x", /bad registry port/],
  ["non-numeric port", "example.com:abc/x", /bad registry port/],
  ["empty port", "example.com:/x", /bad registry port/],
  ["unterminated ipv6", "[::1/x", /IPv6/],
  ["junk after ipv6", "[::1]x/y", /bad registry host/],
  ["missing repository", ":tag", /missing repository/],
  ["only digest", `@${D}`, /missing repository/],
];

describe("parseReference: invalid", () => {
  it.each(invalid)("%s: %s", (_name, input, reason) => {
    let caught: unknown;
    try {
      parseReference(input);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(FerryError);
    const e = caught as FerryError;
    expect(e.code).toBe("InvalidReference");
    expect(e.message).toMatch(reason);
    expect(String(e.details.reason)).toMatch(reason);
  });

  it("keeps the digest error as cause", () => {
    try {
      parseReference("alpine@sha256:abc");
      expect.unreachable();
    } catch (err) {
      expect((err as Error).cause).toBeInstanceOf(FerryError);
      expect(((err as Error).cause as FerryError).code).toBe("InvalidDigest");
    }
  });
});

describe("parseReference: options", () => {
  it("defaults the tag only when neither tag nor digest is given", () => {
    expect(parseReference("a/b").tag).toBe("latest");
    expect(parseReference(`a/b@${D}`).tag).toBeUndefined();
    expect(parseReference("a/b", { defaultTag: false }).tag).toBeUndefined();
    expect(parseReference("a/b", { defaultTag: false }).toString()).toBe("docker.io/a/b");
    expect(parseReference("a/b", { defaultTag: "stable" }).tag).toBe("stable");
    expect(parseReference("a/b:1", { defaultTag: "stable" }).tag).toBe("1");
  });

  it("uses another default registry (without library/ prefix)", () => {
    const r = parseReference("alpine", { defaultRegistry: "127.0.0.1:5000" });
    expect(r.name).toBe("127.0.0.1:5000/alpine");
    expect(r.apiHost).toBe("127.0.0.1:5000");
    expect(parseReference("ghcr.io/x", { defaultRegistry: "127.0.0.1:5000" }).registry).toBe("ghcr.io");
  });
});

describe("familiarString", () => {
  it.each([
    ["alpine", "alpine:latest"],
    ["docker.io/library/alpine:3", "alpine:3"],
    ["bitnami/redis", "bitnami/redis:latest"],
    ["library/a/b:1", "library/a/b:1"],
    [`alpine@${D}`, `alpine@${D}`],
    ["ghcr.io/library/x:1", "ghcr.io/library/x:1"],
    ["127.0.0.1:5000/demo:1", "127.0.0.1:5000/demo:1"],
  ])("%s → %s", (input, want) => {
    expect(familiarString(parseReference(input))).toBe(want);
    // The short form parses back to the same reference.
    expect(parseReference(familiarString(parseReference(input))).toString()).toBe(parseReference(input).toString());
  });
});

describe("defaultScheme", () => {
  const table: Array<[string, "http" | "https", string[]?]> = [
    ["localhost", "http"],
    ["localhost:5000", "http"],
    ["LOCALHOST:5000", "http"],
    ["registry.localhost", "http"],
    ["a.b.localhost:8443", "http"],
    ["127.0.0.1", "http"],
    ["127.0.0.1:5000", "http"],
    ["127.1.2.3:80", "http"],
    ["[::1]", "http"],
    ["[::1]:5000", "http"],
    ["docker.io", "https"],
    ["registry-1.docker.io", "https"],
    ["ghcr.io", "https"],
    ["localhost.example.com", "https"],
    ["mylocalhost", "https"],
    ["128.0.0.1:5000", "https"],
    ["[::2]:5000", "https"],
    ["10.0.0.5:5000", "https"],
    ["10.0.0.5:5000", "http", ["10.0.0.5:5000"]],
    ["10.0.0.5:5001", "https", ["10.0.0.5:5000"]],
    ["10.0.0.5:5001", "http", ["10.0.0.5"]],
    ["reg.lan", "http", ["REG.lan"]],
    ["reg.lan:443", "http", ["http://reg.lan/"]],
    ["other.lan", "https", ["reg.lan"]],
  ];
  it.each(table)("%s → %s (insecure %j)", (host, want, insecure) => {
    expect(defaultScheme(host, insecure ? { insecure } : undefined)).toBe(want);
  });

  it("isLoopbackHost and splitHostPort", () => {
    expect(isLoopbackHost("::1")).toBe(true);
    expect(isLoopbackHost("example.com")).toBe(false);
    expect(splitHostPort("[::1]:5000")).toEqual({ host: "[::1]", port: "5000" });
    expect(splitHostPort("[::1]")).toEqual({ host: "[::1]" });
    expect(splitHostPort("a.b:1")).toEqual({ host: "a.b", port: "1" });
    expect(splitHostPort("a.b")).toEqual({ host: "a.b" });
    expect(splitHostPort("fe80::1")).toEqual({ host: "fe80::1" });
  });
});
