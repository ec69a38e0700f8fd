/**
 * A throwaway instance of the reference registry (Debian `docker-registry`, distribution 2.8)
 * on 127.0.0.1: filesystem storage in a temp dir, deletes on, redirects off, optional auth.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { openSync, closeSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InvalidArgumentError, UnavailableError } from "@ferry/core";
import { freePort } from "./free-port.ts";
import { runTool, whichTool } from "./tools.ts";

/** Basic auth backed by a bcrypt htpasswd file generated with `htpasswd -Bbn`. */
export interface HtpasswdAuth {
  htpasswd: {
    username: string;
    password: string;
    /** Realm in the `WWW-Authenticate` challenge. Default `"ferry-test"`. */
    realm?: string;
  };
}

/** Docker token auth: the registry sends clients to `realm` and verifies JWTs against the bundle. */
export interface TokenAuth {
  token: {
    /** Token endpoint URL (the `realm` of the Bearer challenge). */
    realm: string;
    /** The `service` the tokens must be issued for (their `aud`). */
    service: string;
    /** The `iss` the tokens must carry. */
    issuer: string;
    /** PEM file with the certificate(s) whose keys sign the tokens. */
    rootCertBundlePath: string;
  };
}

export interface StartDockerRegistryOptions {
  /** Access control. Default: none (anonymous push and pull). */
  auth?: HtpasswdAuth | TokenAuth;
  /** Port on 127.0.0.1. Default: a free port picked by the kernel (retried if taken meanwhile). */
  port?: number;
  /** distribution log level; `info` logs one line per request. Default `"info"`. */
  logLevel?: "error" | "warn" | "info" | "debug";
  /** Parent of the temp data dir. Default `os.tmpdir()`. */
  tmpDir?: string;
  /** How long to wait for `GET /v2/` to answer. Default 30 000 ms. */
  startTimeoutMs?: number;
  /** Keep the data dir after `stop()` (to inspect storage or the log). Default false. */
  keepDataDir?: boolean;
}

export interface RunningRegistry {
  /** `127.0.0.1:PORT`, for image references (`${host}/repo:tag`). */
  host: string;
  /** `http://127.0.0.1:PORT`. */
  url: string;
  port: number;
  /** Temp dir holding `config.yml`, `storage/` and the log. */
  dataDir: string;
  /** The registry's stdout and stderr (one line per request at log level info). */
  logFile: string;
  /** The child's pid. */
  pid: number;
  /** Current log contents (handy in assertion messages). */
  readLog(): string;
  /** SIGTERM, then SIGKILL after 5 s; removes the data dir. Idempotent. */
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Start a registry and wait until it serves `GET /v2/` (200, or 401 with auth on). */
export async function startDockerRegistry(options: StartDockerRegistryOptions = {}): Promise<RunningRegistry> {
  const bin = whichTool("docker-registry");
  if (bin === undefined) {
    throw new UnavailableError("docker-registry is not installed (apt-get install docker-registry)");
  }
  const dataDir = await mkdtemp(join(options.tmpDir ?? tmpdir(), "ferry-registry-"));
  try {
    const authYaml = await authConfig(options.auth, dataDir);
    // A kernel-picked port can be grabbed by someone else before the registry binds it:
    // try a few ports unless the caller fixed one.
    const attempts = options.port === undefined ? 5 : 1;
    let lastError: unknown;
    for (let i = 0; i < attempts; i++) {
      const port = options.port ?? (await freePort());
      try {
        return await launch(bin, dataDir, port, authYaml, options);
      } catch (e) {
        lastError = e;
        if (!(e instanceof PortInUse)) throw e;
      }
    }
    throw new UnavailableError(`docker-registry could not bind a port after ${attempts} attempt(s)`, { cause: lastError });
  } catch (e) {
    await rm(dataDir, { recursive: true, force: true });
    throw e;
  }
}

/** Internal signal: the port was taken; never escapes startDockerRegistry. */
class PortInUse extends Error {}

async function authConfig(auth: StartDockerRegistryOptions["auth"], dataDir: string): Promise<string> {
  if (auth === undefined) return "";
  if ("htpasswd" in auth) {
    const { username, password, realm = "ferry-test" } = auth.htpasswd;
    if (username.includes(":")) throw new InvalidArgumentError("htpasswd username must not contain ':'");
    const { stdout } = await runTool("htpasswd", ["-Bbn", username, password]);
    const path = join(dataDir, "htpasswd");
    await writeFile(path, stdout.trim() + "\n", { mode: 0o600 });
    return `auth:\n  htpasswd:\n    realm: ${yamlString(realm)}\n    path: ${yamlString(path)}\n`;
  }
  const t = auth.token;
  return (
    `auth:\n  token:\n` +
    `    realm: ${yamlString(t.realm)}\n` +
    `    service: ${yamlString(t.service)}\n` +
    `    issuer: ${yamlString(t.issuer)}\n` +
    `    rootcertbundle: ${yamlString(t.rootCertBundlePath)}\n`
  );
}

// JSON strings are valid YAML scalars and escape everything that matters.
const yamlString = (s: string): string => JSON.stringify(s);

async function launch(
  bin: string,
  dataDir: string,
  port: number,
  authYaml: string,
  options: StartDockerRegistryOptions,
): Promise<RunningRegistry> {
  const configPath = join(dataDir, "config.yml");
  const logFile = join(dataDir, "registry.log");
  const config =
    `version: 0.1\n` +
    `log:\n  level: ${options.logLevel ?? "info"}\n  formatter: text\n  accesslog:\n    disabled: true\n` +
    `storage:\n  filesystem:\n    rootdirectory: ${yamlString(join(dataDir, "storage"))}\n` +
    `  delete:\n    enabled: true\n  redirect:\n    disable: true\n  cache:\n    blobdescriptor: inmemory\n` +
    `http:\n  addr: 127.0.0.1:${port}\n  secret: ${randomBytes(16).toString("hex")}\n` +
    `  headers:\n    X-Content-Type-Options: [nosniff]\n` +
    authYaml;
  await writeFile(configPath, config);

  // distribution lets REGISTRY_* variables override config.yml; a stray one must not leak in.
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("REGISTRY_")) env[k] = v;

  const fd = openSync(logFile, "a");
  let child: ChildProcess;
  try {
    child = spawn(bin, ["serve", configPath], { env, stdio: ["ignore", fd, fd] });
  } finally {
    closeSync(fd);
  }
  live.add(child);
  installExitHook();
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once("exit", () => resolve());
  });
  void exited.then(() => live.delete(child));

  const url = `http://127.0.0.1:${port}`;
  const readLog = (): string => {
    try {
      return readFileSync(logFile, "utf8");
    } catch {
      return "";
    }
  };
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      await terminate(child, exited);
      if (!options.keepDataDir) await rm(dataDir, { recursive: true, force: true });
    })());

  const deadline = Date.now() + (options.startTimeoutMs ?? 30_000);
  const wantStatus = options.auth === undefined ? 200 : 401;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      const log = readLog();
      if (/address already in use/i.test(log)) throw new PortInUse(`port ${port} in use`);
      throw new UnavailableError(`docker-registry exited during startup: ${tail(log)}`, { details: { logFile } });
    }
    const status = await probe(`${url}/v2/`);
    if (status === wantStatus) break;
    if (status !== undefined && status !== wantStatus) {
      await terminate(child, exited);
      throw new UnavailableError(`docker-registry answered ${status} on /v2/, expected ${wantStatus}`, { details: { logFile } });
    }
    if (Date.now() > deadline) {
      await terminate(child, exited);
      throw new UnavailableError(`docker-registry did not answer on ${url}/v2/ in time: ${tail(readLog())}`);
    }
    await sleep(50);
  }
  return { host: `127.0.0.1:${port}`, url, port, dataDir, logFile, pid: child.pid!, readLog, stop };
}

async function terminate(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
  await exited;
  clearTimeout(timer);
}

/** Status of a GET, or undefined when nothing listens yet. */
function probe(url: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = request(url, { method: "GET", timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(undefined));
    req.end();
  });
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // A crashed test run must not leave registries behind.
  process.once("exit", () => {
    for (const c of live) c.kill("SIGKILL");
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function tail(log: string): string {
  return log.trim().split("\n").slice(-5).join(" | ") || "(empty log)";
}
