/**
 * Where registry credentials come from: explicit per-host values, or the docker CLI's
 * `config.json` (`auths`, `credHelpers`, `credsStore`) with `docker-credential-*` helpers.
 *
 * Lookup for a registry host in the docker config (the docker CLI's order):
 *   1. `credHelpers[host]` names a helper: ask it.
 *   2. else `credsStore` names a default helper: ask it; when it has nothing, fall back to
 *      the `auths` entry (some configs carry both).
 *   3. else the `auths` entry (`auth` = base64 `user:pass`, or `username`/`password`,
 *      `identitytoken`, `registrytoken`).
 * A helper that is not installed, or that answers "credentials not found", means anonymous.
 */
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { AbortedError, InvalidArgumentError, UnavailableError, abortError, throwIfAborted } from "@ferry/core";
import { DOCKER_HUB, normaliseRegistry } from "../reference.ts";
import { redact } from "./redact.ts";

/** A username and password (sent as Basic, or as an OAuth2 `password` grant). */
export interface PasswordCredential {
  username: string;
  password: string;
}
/** An OAuth2 refresh token (`identitytoken` in docker's config), exchanged for access tokens. */
export interface IdentityTokenCredential {
  identityToken: string;
  username?: string;
}
/** A ready bearer token sent as is (`registrytoken` in docker's config). */
export interface RegistryTokenCredential {
  registryToken: string;
}
export type Credential = PasswordCredential | IdentityTokenCredential | RegistryTokenCredential;

/** Looks up credentials for a registry host (`docker.io`, `ghcr.io`, `127.0.0.1:5000`). */
export interface CredentialStore {
  /** Credentials for `host`, or undefined for anonymous access. Throws only when a source is broken (unreadable config, crashing helper). */
  get(host: string, signal?: AbortSignal): Promise<Credential | undefined>;
}

/** Explicit credentials keyed by registry host. `{ token }` is accepted as a registry token. */
export type CredentialMap = Record<string, Credential | { token: string }>;

/** Normalise a registry key the way docker compares them: drop scheme and path, lowercase, Docker Hub aliases → `docker.io`. */
export function credentialHostKey(key: string): string {
  let k = key.trim().replace(/^[a-z][a-z0-9+.-]*:\/\//i, "");
  const slash = k.indexOf("/");
  if (slash >= 0) k = k.slice(0, slash);
  return normaliseRegistry(k);
}

/** The server URL docker uses (and helpers store) for a registry host. */
export function dockerServerUrl(host: string): string {
  return credentialHostKey(host) === DOCKER_HUB ? "https://index.docker.io/v1/" : host;
}

function fromMapValue(v: Credential | { token: string }): Credential {
  if ("token" in v && typeof v.token === "string") return { registryToken: v.token };
  return v as Credential;
}

/** A store over explicit credentials; keys are normalised like docker's (`https://index.docker.io/v1/` = `docker.io`). */
export function staticCredentials(map: CredentialMap): CredentialStore {
  const byHost = new Map<string, Credential>();
  for (const [k, v] of Object.entries(map)) byHost.set(credentialHostKey(k), fromMapValue(v));
  return {
    async get(host) {
      return byHost.get(credentialHostKey(host));
    },
  };
}

/** Try stores in order; the first that has credentials wins. */
export function chainCredentials(...stores: CredentialStore[]): CredentialStore {
  return {
    async get(host, signal) {
      for (const s of stores) {
        const c = await s.get(host, signal);
        if (c) return c;
      }
      return undefined;
    },
  };
}

export interface DockerConfigOptions {
  /**
   * Path of `config.json`. Default: `$DOCKER_CONFIG/config.json` when `DOCKER_CONFIG` is set in
   * `env`, else `~/.docker/config.json`.
   */
  configPath?: string;
  /** Environment for `DOCKER_CONFIG`, `HOME` and the helpers' `PATH`. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Longest a credential helper may run, in ms. Default 30 000. */
  helperTimeoutMs?: number;
}

interface DockerAuthEntry {
  auth?: unknown;
  username?: unknown;
  password?: unknown;
  identitytoken?: unknown;
  registrytoken?: unknown;
}

interface DockerConfig {
  auths: Map<string, DockerAuthEntry>;
  credHelpers: Map<string, string>;
  credsStore?: string;
}

/** The config file path the docker CLI would use. */
export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env["DOCKER_CONFIG"] || join(env["HOME"] || homedir(), ".docker");
  return join(dir, "config.json");
}

/**
 * Credentials from docker's `config.json` and its credential helpers. The file is read once, on
 * first use; helper answers are cached per host for the store's lifetime.
 */
export function dockerConfigCredentials(options: DockerConfigOptions = {}): CredentialStore {
  const env = options.env ?? process.env;
  const path = options.configPath ?? dockerConfigPath(env);
  const timeoutMs = options.helperTimeoutMs ?? 30_000;
  let config: Promise<DockerConfig> | undefined;
  const helperCache = new Map<string, Promise<Credential | undefined>>();

  const fromHelper = (helper: string, host: string, signal?: AbortSignal): Promise<Credential | undefined> => {
    const key = `${helper}\u0000${host}`;
    let p = helperCache.get(key);
    if (!p) {
      p = runCredentialHelper(helper, dockerServerUrl(host), { env, timeoutMs, signal });
      helperCache.set(key, p);
      // Failures (and aborts) are not cached: the next caller tries again.
      p.catch(() => helperCache.delete(key));
    }
    return p;
  };

  return {
    async get(rawHost, signal) {
      throwIfAborted(signal);
      config ??= loadDockerConfig(path);
      let cfg: DockerConfig;
      try {
        cfg = await config;
      } catch (err) {
        config = undefined;
        throw err;
      }
      const host = credentialHostKey(rawHost);
      const helper = cfg.credHelpers.get(host);
      if (helper) return fromHelper(helper, host, signal);
      if (cfg.credsStore) {
        const c = await fromHelper(cfg.credsStore, host, signal);
        if (c) return c;
      }
      const entry = cfg.auths.get(host);
      return entry ? decodeAuthEntry(entry, path, host) : undefined;
    },
  };
}

async function loadDockerConfig(path: string): Promise<DockerConfig> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT" || (err as NodeJS.ErrnoException).code === "ENOTDIR") {
      return { auths: new Map(), credHelpers: new Map() };
    }
    throw new UnavailableError(`cannot read docker config ${path}: ${(err as Error).message}`, { cause: err, details: { path } });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    // No cause: the JSON error message quotes file content, which holds secrets.
    throw new InvalidArgumentError(`docker config ${path} is not valid JSON`, { details: { path } });
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new InvalidArgumentError(`docker config ${path} is not a JSON object`, { details: { path } });
  }
  const o = raw as Record<string, unknown>;
  const cfg: DockerConfig = { auths: new Map(), credHelpers: new Map() };
  if (isRecord(o["auths"])) {
    for (const [k, v] of Object.entries(o["auths"])) {
      // The first key wins when several spellings normalise to one host (docker prefers exact matches).
      const host = credentialHostKey(k);
      if (isRecord(v) && !cfg.auths.has(host)) cfg.auths.set(host, v as DockerAuthEntry);
    }
  }
  if (isRecord(o["credHelpers"])) {
    for (const [k, v] of Object.entries(o["credHelpers"])) {
      if (typeof v === "string" && v !== "") cfg.credHelpers.set(credentialHostKey(k), v);
    }
  }
  if (typeof o["credsStore"] === "string" && o["credsStore"] !== "") cfg.credsStore = o["credsStore"];
  return cfg;
}

function decodeAuthEntry(e: DockerAuthEntry, path: string, host: string): Credential | undefined {
  if (typeof e.registrytoken === "string" && e.registrytoken !== "") return { registryToken: e.registrytoken };
  let username = typeof e.username === "string" ? e.username : undefined;
  let password = typeof e.password === "string" ? e.password : undefined;
  if (typeof e.auth === "string" && e.auth !== "") {
    const decoded = Buffer.from(e.auth, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon < 0) {
      throw new InvalidArgumentError(`docker config ${path}: the "auth" of ${host} is not base64 of "user:password"`, {
        details: { path, host },
      });
    }
    // Only the first colon separates: passwords may contain ':'.
    username = decoded.slice(0, colon);
    password = decoded.slice(colon + 1);
  }
  if (typeof e.identitytoken === "string" && e.identitytoken !== "") {
    return username ? { identityToken: e.identitytoken, username } : { identityToken: e.identitytoken };
  }
  if (username !== undefined && password !== undefined && (username !== "" || password !== "")) return { username, password };
  return undefined;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export interface CredentialHelperOptions {
  /** Environment of the helper (its `PATH` finds it). Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Kill the helper after this many ms. Default 30 000. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

const HELPER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const MAX_HELPER_OUTPUT = 1024 * 1024;

/**
 * Run `docker-credential-<helper> get` with `serverUrl` on stdin. Resolves undefined when the
 * helper is not installed or has no credentials for the server; a `<token>` username means the
 * secret is an identity token. Other failures throw {@link UnavailableError} (output redacted).
 */
export function runCredentialHelper(helper: string, serverUrl: string, options: CredentialHelperOptions = {}): Promise<Credential | undefined> {
  if (!HELPER_NAME.test(helper)) {
    return Promise.reject(new InvalidArgumentError(`invalid credential helper name ${JSON.stringify(helper)}`, { details: { helper } }));
  }
  const { signal } = options;
  if (signal?.aborted) return Promise.reject(abortError(signal));
  const program = `docker-credential-${helper}`;
  return new Promise((resolve, reject) => {
    let settled = false;
    const chunks: Buffer[] = [];
    let size = 0;
    let stderr = "";
    const child = spawn(program, ["get"], { env: options.env ?? process.env, stdio: ["pipe", "pipe", "pipe"] });
    const finish = (err: Error | undefined, value?: Credential) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      if (err) reject(err);
      else resolve(value);
    };
    const onAbort = () => {
      child.kill("SIGKILL");
      finish(signal ? abortError(signal) : new AbortedError("credential helper aborted"));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      finish(new UnavailableError(`credential helper ${program} did not answer within ${options.timeoutMs ?? 30_000} ms`, { details: { helper } }));
    }, options.timeoutMs ?? 30_000);
    timer.unref?.();

    child.on("error", (err: NodeJS.ErrnoException) => {
      // Not installed: anonymous, as the docker CLI does for a missing helper on pull.
      if (err.code === "ENOENT") finish(undefined, undefined);
      else finish(new UnavailableError(`cannot run credential helper ${program}: ${err.message}`, { cause: err, details: { helper } }));
    });
    child.stdout.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_HELPER_OUTPUT) {
        child.kill("SIGKILL");
        finish(new UnavailableError(`credential helper ${program} wrote more than ${MAX_HELPER_OUTPUT} bytes`, { details: { helper } }));
        return;
      }
      chunks.push(c);
    });
    child.stderr.on("data", (c: Buffer) => {
      if (stderr.length < 4096) stderr += c.toString("utf8");
    });
    child.stdin.on("error", () => {
      // EPIPE when the helper exits without reading stdin; the exit code tells the story.
    });
    child.stdin.end(serverUrl);
    child.on("close", (code) => {
      const out = Buffer.concat(chunks).toString("utf8").trim();
      if (code !== 0) {
        const text = `${out}\n${stderr}`;
        if (/credentials not found/i.test(text)) return finish(undefined, undefined);
        const msg = redact(text.trim()).slice(0, 300);
        return finish(
          new UnavailableError(`credential helper ${program} failed (exit ${code})${msg ? `: ${msg}` : ""}`, { details: { helper, exitCode: code } }),
        );
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(out);
      } catch {
        return finish(new UnavailableError(`credential helper ${program} printed something that is not JSON`, { details: { helper } }));
      }
      if (!isRecord(parsed)) return finish(new UnavailableError(`credential helper ${program} printed no JSON object`, { details: { helper } }));
      const username = typeof parsed["Username"] === "string" ? parsed["Username"] : "";
      const secret = typeof parsed["Secret"] === "string" ? parsed["Secret"] : "";
      if (secret === "" && username === "") return finish(undefined, undefined);
      if (username === "<token>") return finish(undefined, { identityToken: secret });
      finish(undefined, { username, password: secret });
    });
  });
}

/**
 * The default credential store: explicit `credentials` first (when given), then docker's
 * config and helpers (unless `dockerConfig` is `false`).
 */
export function createCredentialStore(options: { credentials?: CredentialMap; dockerConfig?: DockerConfigOptions | false } = {}): CredentialStore {
  const stores: CredentialStore[] = [];
  if (options.credentials) stores.push(staticCredentials(options.credentials));
  if (options.dockerConfig !== false) stores.push(dockerConfigCredentials(options.dockerConfig ?? {}));
  return chainCredentials(...stores);
}
