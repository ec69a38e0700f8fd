import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chmod, mkdtemp, rm, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FerryError } from "@ferry/core";
import {
  createCredentialStore,
  credentialHostKey,
  dockerConfigCredentials,
  dockerConfigPath,
  dockerServerUrl,
  runCredentialHelper,
  staticCredentials,
} from "./credentials.ts";

const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");

let dir: string;
let binDir: string;
let env: NodeJS.ProcessEnv;

// A fake helper: answers from a JSON file mapping server URL → {Username, Secret}; logs each call.
const HELPER = `#!/bin/sh
read -r url
echo "$url" >> "$FAKE_HELPER_LOG"
case "$url" in
  crash.example) echo "boom: token=supersecret" >&2; exit 3 ;;
  slow.example) sleep 5 ;;
  notjson.example) echo "hello"; exit 0 ;;
esac
node -e '
const m = JSON.parse(require("fs").readFileSync(process.env.FAKE_HELPER_DB, "utf8"));
const u = process.argv[1];
if (!m[u]) { process.stdout.write("credentials not found in native keychain\\n"); process.exit(1); }
process.stdout.write(JSON.stringify({ ServerURL: u, ...m[u] }));
' "$url"
`;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "ferry-creds-"));
  binDir = join(dir, "bin");
  await mkdir(binDir);
  for (const name of ["docker-credential-fake", "docker-credential-other"]) {
    await writeFile(join(binDir, name), HELPER);
    await chmod(join(binDir, name), 0o755);
  }
  await writeFile(
    join(dir, "helper-db.json"),
    JSON.stringify({
      "ghcr.io": { Username: "gh-user", Secret: "gh:pass" },
      "https://index.docker.io/v1/": { Username: "<token>", Secret: "hub-refresh-token" },
      "quay.io": { Username: "q", Secret: "qs" },
    }),
  );
  env = {
    PATH: `${binDir}:${process.env["PATH"] ?? ""}`,
    HOME: join(dir, "home"),
    FAKE_HELPER_DB: join(dir, "helper-db.json"),
    FAKE_HELPER_LOG: join(dir, "helper.log"),
  };
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function configDir(name: string, config: unknown): Promise<string> {
  const d = join(dir, name);
  await mkdir(d, { recursive: true });
  await writeFile(join(d, "config.json"), typeof config === "string" ? config : JSON.stringify(config));
  return d;
}

describe("host keys", () => {
  it.each([
    ["https://index.docker.io/v1/", "docker.io"],
    ["index.docker.io", "docker.io"],
    ["registry-1.docker.io", "docker.io"],
    ["docker.io", "docker.io"],
    ["https://GHCR.io", "ghcr.io"],
    ["http://127.0.0.1:5000/v2/", "127.0.0.1:5000"],
    ["localhost:5000", "localhost:5000"],
    ["[::1]:5000", "[::1]:5000"],
  ])("%s → %s", (key, want) => {
    expect(credentialHostKey(key)).toBe(want);
  });
  it("docker server URL", () => {
    expect(dockerServerUrl("docker.io")).toBe("https://index.docker.io/v1/");
    expect(dockerServerUrl("registry-1.docker.io")).toBe("https://index.docker.io/v1/");
    expect(dockerServerUrl("ghcr.io")).toBe("ghcr.io");
  });
  it("config path honours DOCKER_CONFIG then HOME", () => {
    expect(dockerConfigPath({ DOCKER_CONFIG: "/x/y", HOME: "/h" })).toBe("/x/y/config.json");
    expect(dockerConfigPath({ HOME: "/h" })).toBe("/h/.docker/config.json");
  });
});

describe("staticCredentials", () => {
  it("normalises keys and accepts { token }", async () => {
    const s = staticCredentials({
      "https://index.docker.io/v1/": { username: "u", password: "p" },
      "ghcr.io": { token: "tok" },
      "quay.io": { identityToken: "idt" },
    });
    expect(await s.get("registry-1.docker.io")).toEqual({ username: "u", password: "p" });
    expect(await s.get("docker.io")).toEqual({ username: "u", password: "p" });
    expect(await s.get("ghcr.io")).toEqual({ registryToken: "tok" });
    expect(await s.get("quay.io")).toEqual({ identityToken: "idt" });
    expect(await s.get("other.io")).toBeUndefined();
  });
});

describe("dockerConfigCredentials", () => {
  it("decodes auths: base64 user:pass with ':' in the password, identitytoken, registrytoken, username/password, key spellings", async () => {
    const d = await configDir("auths", {
      auths: {
        "https://index.docker.io/v1/": { auth: b64("hubuser:pa:ss:word") },
        "http://127.0.0.1:5000/v2/": { auth: b64("local:secret") },
        "ghcr.io": { auth: b64("ghu:"), identitytoken: "refresh-123" },
        "quay.io": { registrytoken: "raw-bearer" },
        "old.example": { username: "o", password: "pw" },
        "empty.example": {},
      },
    });
    const s = dockerConfigCredentials({ env: { ...env, DOCKER_CONFIG: d } });
    expect(await s.get("docker.io")).toEqual({ username: "hubuser", password: "pa:ss:word" });
    expect(await s.get("registry-1.docker.io")).toEqual({ username: "hubuser", password: "pa:ss:word" });
    expect(await s.get("127.0.0.1:5000")).toEqual({ username: "local", password: "secret" });
    expect(await s.get("127.0.0.1:5001")).toBeUndefined();
    expect(await s.get("ghcr.io")).toEqual({ identityToken: "refresh-123", username: "ghu" });
    expect(await s.get("quay.io")).toEqual({ registryToken: "raw-bearer" });
    expect(await s.get("old.example")).toEqual({ username: "o", password: "pw" });
    expect(await s.get("empty.example")).toBeUndefined();
  });

  it("uses configPath and a missing file means anonymous", async () => {
    const s = dockerConfigCredentials({ configPath: join(dir, "nope", "config.json"), env });
    expect(await s.get("docker.io")).toBeUndefined();
  });

  it("rejects invalid JSON without quoting the file", async () => {
    const d = await configDir("badjson", '{"auths": {"x": {"auth": "c2VjcmV0OnNlY3JldA=="}');
    const s = dockerConfigCredentials({ env: { ...env, DOCKER_CONFIG: d } });
    const err = await s.get("x").catch((e: unknown) => e);
    expect((err as FerryError).code).toBe("InvalidArgument");
    expect((err as Error).message).not.toContain("c2VjcmV0");
  });

  it("rejects an auth that is not user:pass", async () => {
    const d = await configDir("badauth", { auths: { x: { auth: b64("nocolon") } } });
    const err = await dockerConfigCredentials({ env: { ...env, DOCKER_CONFIG: d } }).get("x").catch((e: unknown) => e);
    expect((err as FerryError).code).toBe("InvalidArgument");
    expect((err as Error).message).not.toContain("nocolon");
  });

  it("asks credHelpers per host and credsStore by default, with the server URL on stdin", async () => {
    const d = await configDir("helpers", {
      auths: { "fallback.example": { auth: b64("fb:pw") }, "ghcr.io": {} },
      credHelpers: { "ghcr.io": "fake", "missing.example": "not-installed", "crash.example": "fake" },
      credsStore: "other",
    });
    await writeFile(env["FAKE_HELPER_LOG"] as string, "");
    const s = dockerConfigCredentials({ env: { ...env, DOCKER_CONFIG: d } });
    expect(await s.get("ghcr.io")).toEqual({ username: "gh-user", password: "gh:pass" });
    // Docker Hub through the default store: "<token>" means identity token.
    expect(await s.get("docker.io")).toEqual({ identityToken: "hub-refresh-token" });
    expect(await s.get("quay.io")).toEqual({ username: "q", password: "qs" });
    // Default store has nothing: fall back to auths.
    expect(await s.get("fallback.example")).toEqual({ username: "fb", password: "pw" });
    // Helper has nothing and no auths entry: anonymous.
    expect(await s.get("nothing.example")).toBeUndefined();
    // Helper not installed: anonymous.
    expect(await s.get("missing.example")).toBeUndefined();
    // Cached: a second lookup does not run the helper again.
    expect(await s.get("ghcr.io")).toEqual({ username: "gh-user", password: "gh:pass" });
    const { readFile } = await import("node:fs/promises");
    const log = (await readFile(env["FAKE_HELPER_LOG"] as string, "utf8")).trim().split("\n");
    expect(log).toEqual(["ghcr.io", "https://index.docker.io/v1/", "quay.io", "fallback.example", "nothing.example"]);
    // A crashing helper is an error whose message is redacted.
    const err = await s.get("crash.example").catch((e: unknown) => e);
    expect((err as FerryError).code).toBe("Unavailable");
    expect((err as Error).message).toContain("exit 3");
    expect((err as Error).message).not.toContain("supersecret");
  });

  it("createCredentialStore puts explicit credentials first", async () => {
    const d = await configDir("chain", { auths: { "a.example": { auth: b64("file:pw") }, "b.example": { auth: b64("fileb:pw") } } });
    const s = createCredentialStore({ credentials: { "a.example": { username: "x", password: "y" } }, dockerConfig: { env: { ...env, DOCKER_CONFIG: d } } });
    expect(await s.get("a.example")).toEqual({ username: "x", password: "y" });
    expect(await s.get("b.example")).toEqual({ username: "fileb", password: "pw" });
    const onlyExplicit = createCredentialStore({ dockerConfig: false });
    expect(await onlyExplicit.get("b.example")).toBeUndefined();
  });
});

describe("runCredentialHelper", () => {
  it("reports non-JSON output, rejects bad names, times out, aborts", async () => {
    const e1 = await runCredentialHelper("fake", "notjson.example", { env }).catch((e: unknown) => e);
    expect((e1 as FerryError).code).toBe("Unavailable");
    const e2 = await runCredentialHelper("../evil", "x", { env }).catch((e: unknown) => e);
    expect((e2 as FerryError).code).toBe("InvalidArgument");
    const e3 = await runCredentialHelper("fake", "slow.example", { env, timeoutMs: 200 }).catch((e: unknown) => e);
    expect((e3 as FerryError).code).toBe("Unavailable");
    expect((e3 as Error).message).toMatch(/did not answer/);
    const ac = new AbortController();
    const p = runCredentialHelper("fake", "slow.example", { env, signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    const e4 = await p.catch((e: unknown) => e);
    expect((e4 as FerryError).code).toBe("Aborted");
  });
});
