import { describe, expect, it } from "vitest";
import { FerryError } from "@ferry/core";
import { type Challenge, findChallenge, parseChallenges } from "./challenge.ts";

type C = { scheme: string; params?: Record<string, string>; token68?: string };

function plain(cs: Challenge[]): C[] {
  return cs.map((c) => {
    const o: C = { scheme: c.scheme, params: { ...c.params } };
    if (c.token68 !== undefined) o.token68 = c.token68;
    return o;
  });
}

const table: Array<[string, string | string[], C[]]> = [
  // Real registries.
  [
    "Docker Hub",
    'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"',
    [{ scheme: "bearer", params: { realm: "https://auth.docker.io/token", service: "registry.docker.io", scope: "repository:library/alpine:pull" } }],
  ],
  [
    "GHCR",
    'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:owner/app:pull"',
    [{ scheme: "bearer", params: { realm: "https://ghcr.io/token", service: "ghcr.io", scope: "repository:owner/app:pull" } }],
  ],
  [
    "ECR Basic",
    'Basic realm="https://123456789012.dkr.ecr.us-east-1.amazonaws.com/",service="ecr.amazonaws.com"',
    [{ scheme: "basic", params: { realm: "https://123456789012.dkr.ecr.us-east-1.amazonaws.com/", service: "ecr.amazonaws.com" } }],
  ],
  [
    "Harbor",
    'Bearer realm="https://harbor.example.com/service/token",service="harbor-registry",scope="repository:library/nginx:pull"',
    [{ scheme: "bearer", params: { realm: "https://harbor.example.com/service/token", service: "harbor-registry", scope: "repository:library/nginx:pull" } }],
  ],
  ["distribution htpasswd", 'Basic realm="Registry Realm"', [{ scheme: "basic", params: { realm: "Registry Realm" } }]],
  [
    "distribution token, push scope with comma inside quotes",
    'Bearer realm="http://127.0.0.1:5001/auth",service="Docker registry",scope="repository:foo/bar:pull,push"',
    [{ scheme: "bearer", params: { realm: "http://127.0.0.1:5001/auth", service: "Docker registry", scope: "repository:foo/bar:pull,push" } }],
  ],
  [
    "distribution invalid_token",
    'Bearer realm="https://auth.example/token",service="reg",scope="repository:a:pull",error="invalid_token"',
    [{ scheme: "bearer", params: { realm: "https://auth.example/token", service: "reg", scope: "repository:a:pull", error: "invalid_token" } }],
  ],
  [
    "distribution insufficient_scope",
    'Bearer realm="https://auth.example/token",service="reg",scope="repository:samalba/my-app:pull,push",error="insufficient_scope"',
    [{ scheme: "bearer", params: { realm: "https://auth.example/token", service: "reg", scope: "repository:samalba/my-app:pull,push", error: "insufficient_scope" } }],
  ],
  ["Quay", 'Bearer realm="https://quay.io/v2/auth",service="quay.io"', [{ scheme: "bearer", params: { realm: "https://quay.io/v2/auth", service: "quay.io" } }]],
  [
    "ACR",
    'Bearer realm="https://myreg.azurecr.io/oauth2/token",service="myreg.azurecr.io"',
    [{ scheme: "bearer", params: { realm: "https://myreg.azurecr.io/oauth2/token", service: "myreg.azurecr.io" } }],
  ],
  // RFC 9110 example: two challenges in one line.
  [
    "RFC 9110 example",
    'Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"',
    [
      { scheme: "newauth", params: { realm: "apps", type: "1", title: 'Login to "apps"' } },
      { scheme: "basic", params: { realm: "simple" } },
    ],
  ],
  [
    "several header lines",
    ['Basic realm="a"', 'Bearer realm="https://t/x",service="s"'],
    [
      { scheme: "basic", params: { realm: "a" } },
      { scheme: "bearer", params: { realm: "https://t/x", service: "s" } },
    ],
  ],
  [
    "scheme case-insensitive, param names lowercased, values kept",
    'BEARER Realm="https://T/X",SERVICE=Reg',
    [{ scheme: "bearer", params: { realm: "https://T/X", service: "Reg" } }],
  ],
  ["escapes", 'Basic realm="a\\\\b\\"c\\d"', [{ scheme: "basic", params: { realm: 'a\\b"cd' } }]],
  ["commas and equals inside quotes", 'Basic realm="a, b=c, Bearer x"', [{ scheme: "basic", params: { realm: "a, b=c, Bearer x" } }]],
  ["BWS around =", 'Basic realm = "x" , charset =UTF-8', [{ scheme: "basic", params: { realm: "x", charset: "UTF-8" } }]],
  ["tabs and extra spaces", '\t Bearer \t realm="x" ,\t service="y"  ', [{ scheme: "bearer", params: { realm: "x", service: "y" } }]],
  ["empty list elements", ', ,Basic realm="x",, ,service="y",, Bearer realm="z",', [
    { scheme: "basic", params: { realm: "x", service: "y" } },
    { scheme: "bearer", params: { realm: "z" } },
  ]],
  ["empty quoted value", 'Bearer realm="",service=""', [{ scheme: "bearer", params: { realm: "", service: "" } }]],
  ["scheme without params", "Basic", [{ scheme: "basic", params: {} }]],
  ["schemes without params", "Basic, Negotiate", [{ scheme: "basic", params: {} }, { scheme: "negotiate", params: {} }]],
  ["token68", "Negotiate YIIabc+/9==", [{ scheme: "negotiate", params: {}, token68: "YIIabc+/9==" }]],
  ["token68 then a challenge", "Negotiate abc=, Basic realm=\"x\"", [
    { scheme: "negotiate", params: {}, token68: "abc=" },
    { scheme: "basic", params: { realm: "x" } },
  ]],
  ["challenge then token68", 'Basic realm="x", Negotiate abc', [
    { scheme: "basic", params: { realm: "x" } },
    { scheme: "negotiate", params: {}, token68: "abc" },
  ]],
  ["duplicate param: first wins", 'Basic realm="a", realm="b"', [{ scheme: "basic", params: { realm: "a" } }]],
  ["unquoted URL realm (lenient)", "Bearer realm=https://auth.example/token,service=reg", [
    { scheme: "bearer", params: { realm: "https://auth.example/token", service: "reg" } },
  ]],
  ["empty unquoted value (lenient)", 'Bearer realm="x",service=,scope="y"', [{ scheme: "bearer", params: { realm: "x", service: "", scope: "y" } }]],
  ["empty header", "", []],
  ["only separators", " , ,", []],
  ["prototype-ish param names stay plain data", 'Basic __proto__="x", constructor="y"', [{ scheme: "basic", params: { ["__proto__"]: "x", constructor: "y" } }]],
  // Best-effort skips of malformed challenges.
  ["skips a bad challenge before a good one", 'Bad realm="x" junk, Bearer realm="y"', [{ scheme: "bearer", params: { realm: "y" } }]],
  ["skips an unterminated quote (to the end)", 'Bearer realm="y", Basic realm="x', [{ scheme: "bearer", params: { realm: "y" } }]],
  ["skips garbage scheme", '"quoted", Basic realm="x"', [{ scheme: "basic", params: { realm: "x" } }]],
  ["skips scheme with bad char", 'Ba(sic realm="x", Bearer realm="y"', [{ scheme: "bearer", params: { realm: "y" } }]],
  ["garbage only", "@@@", []],
  ["skips a challenge broken after good params", 'Bearer realm="x", service="y" junk, Basic realm="z"', [{ scheme: "basic", params: { realm: "z" } }]],
  ["undefined-like header list", [], []],
];

describe("parseChallenges", () => {
  it.each(table)("%s", (_name, header, want) => {
    const got = plain(parseChallenges(header));
    expect(got).toEqual(want.map((w) => ({ params: {}, ...w })));
  });

  it("accepts undefined and null", () => {
    expect(parseChallenges(undefined)).toEqual([]);
    expect(parseChallenges(null)).toEqual([]);
  });

  it("does not let a __proto__ param change the params prototype", () => {
    const [c] = parseChallenges('Basic __proto__="x"');
    expect(Object.getPrototypeOf(c!.params)).toBeNull();
    expect(c!.params["__proto__"]).toBe("x");
  });

  const malformed: Array<[string, string, RegExp]> = [
    ["unterminated quote", 'Basic realm="x', /unterminated quoted-string/],
    ["garbage after value", 'Basic realm="x" junk', /expected ","/],
    ["missing =", "Basic realm x", /expected "="/],
    ["bad scheme char", 'Ba(sic realm="x"', /after auth-scheme/],
    ["quote as scheme", '"x"', /expected an auth-scheme/],
    ["unquoted non-token value", "Bearer realm=https://a/b", /expected ","|missing value/],
    ["missing value", 'Bearer realm="x",service=,scope="y"', /missing value/],
    ["duplicate param", 'Basic realm="a", realm="b"', /duplicate/],
  ];
  it.each(malformed)("strict mode throws InvalidArgument: %s", (_name, header, reason) => {
    let caught: unknown;
    try {
      parseChallenges(header, { strict: true });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(FerryError);
    expect((caught as FerryError).code).toBe("InvalidArgument");
    expect((caught as Error).message).toMatch(reason);
    expect(typeof (caught as FerryError).details.offset).toBe("number");
  });

  it("strict mode parses well-formed real headers like lenient mode", () => {
    for (const [, header, want] of table.slice(0, 24)) {
      expect(plain(parseChallenges(header, { strict: true }))).toEqual(want.map((w) => ({ params: {}, ...w })));
    }
  });

  it("never loops or throws untyped errors on random input", () => {
    const alphabet = ['"', "\\", ",", " ", "=", "a", "B", "1", "/", "\t", "(", "realm", "Basic", "Bearer"];
    let seed = 42;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let i = 0; i < 2000; i++) {
      let h = "";
      const len = rnd(30);
      for (let j = 0; j < len; j++) h += alphabet[rnd(alphabet.length)];
      const cs = parseChallenges(h);
      for (const c of cs) expect(c.scheme).toMatch(/^[!#$%&'*+\-.^_`|~0-9a-z]+$/);
      try {
        parseChallenges(h, { strict: true });
      } catch (err) {
        expect((err as FerryError).code).toBe("InvalidArgument");
      }
    }
  });

  it("findChallenge is case-insensitive", () => {
    const cs = parseChallenges('Basic realm="a", Bearer realm="b"');
    expect(findChallenge(cs, "BEARER")?.params["realm"]).toBe("b");
    expect(findChallenge(cs, "digest")).toBeUndefined();
  });
});
