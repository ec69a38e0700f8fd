/** Shared fixtures of the CLI tests: an embedded registry, a seeded image, the CLI in-process or spawned. */
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll } from "vitest";
import { copy } from "@ferry/core";
import { createRegistryResolver } from "@ferry/fetcher";
import { createRegistry, type Registry, type ListeningRegistry } from "@ferry/registry";
import { openFsStore } from "@ferry/store-fs";
import { buildImage, type BuildImageOptions, type BuiltLayout } from "@ferry/testkit";
import { run } from "../src/cli.ts";

export const binPath = fileURLToPath(new URL("../bin/ferry.js", import.meta.url));

export interface TempDir {
  dir: string;
  remove(): Promise<void>;
}

export async function tempDir(prefix = "ferry-cli-"): Promise<TempDir> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

export interface LocalRegistry extends ListeningRegistry {
  registry: Registry;
  stop(): Promise<void>;
}

/** The embedded registry (memory storage) on a free loopback port. */
export async function startLocalRegistry(): Promise<LocalRegistry> {
  const registry = createRegistry();
  const listening = await registry.listen(0, "127.0.0.1");
  return { ...listening, registry, stop: () => registry.close() };
}

/**
 * The embedded registry and a temp dir for the tests of a file (or of the describe block it is
 * called in): started in `beforeAll`, stopped and removed in `afterAll`. Read `env.reg` and
 * `env.tmp` inside tests and later hooks.
 */
export function useRegistry(): { readonly reg: LocalRegistry; readonly tmp: TempDir } {
  const env = {} as { reg: LocalRegistry; tmp: TempDir };
  beforeAll(async () => {
    env.reg = await startLocalRegistry();
    env.tmp = await tempDir();
  });
  afterAll(async () => {
    await env.reg?.stop();
    await env.tmp?.remove();
  });
  return env;
}

export interface SeededImage extends BuiltLayout {
  /** `host/repo:tag` */
  reference: string;
}

/** Build a random image into `layoutDir` and push it to `host` with ferry's own copy. */
export async function seedImage(
  host: string,
  repoTag: string,
  layoutDir: string,
  options: Omit<BuildImageOptions, "dir"> = { layers: 2, layerSize: 64 * 1024 },
): Promise<SeededImage> {
  const built = await buildImage({ gzipLevel: 0, ...options, dir: layoutDir });
  const store = await openFsStore(layoutDir);
  const resolver = createRegistryResolver();
  const reference = `${host}/${repoTag}`;
  try {
    await copy(built.name, reference, { from: store, to: resolver }).done;
  } finally {
    await resolver.close();
  }
  return { ...built, reference };
}

export interface CliResult {
  code: number;
  stdout: string;
  /** stdout as bytes (fetch writes binary). */
  stdoutBytes: Buffer;
  stderr: string;
}

/** Run the CLI in this process with captured output. */
export async function runCli(
  args: string[],
  options: { cwd?: string; stdin?: Buffer | string; tty?: boolean; rows?: number } = {},
): Promise<CliResult> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  if (options.tty) {
    // Enough of a terminal for cli-progress: it writes cursor movements through node:readline.
    Object.assign(stderr, { isTTY: true, columns: 160, rows: options.rows ?? 50 });
  }
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on("data", (c: Buffer) => out.push(c));
  stderr.on("data", (c: Buffer) => err.push(c));
  const code = await run(args, {
    stdout,
    stderr,
    stdin: Readable.from(options.stdin === undefined ? [] : [Buffer.from(options.stdin)]),
    isTTY: options.tty ?? false,
    // Never the repository: a command that defaults to ./.content must not leave one there.
    cwd: options.cwd ?? tmpdir(),
  });
  const bytes = Buffer.concat(out);
  return { code, stdout: bytes.toString("utf8"), stdoutBytes: bytes, stderr: Buffer.concat(err).toString("utf8") };
}

/** Run `bin/ferry.js` as its own process (the real entry: signals, exit code, stdout flushing). */
export function spawnCli(args: string[], options: { cwd?: string; input?: Buffer } = {}): Promise<CliResult> {
  return spawnShell(process.execPath, [binPath, ...args], options);
}

export function spawnShell(cmd: string, args: string[], options: { cwd?: string; input?: Buffer; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (c: Buffer) => out.push(c));
    child.stderr.on("data", (c: Buffer) => err.push(c));
    child.on("error", reject);
    child.on("close", (code) => {
      const bytes = Buffer.concat(out);
      resolve({ code: code ?? -1, stdout: bytes.toString("utf8"), stdoutBytes: bytes, stderr: Buffer.concat(err).toString("utf8") });
    });
    child.stdin.end(options.input);
  });
}
