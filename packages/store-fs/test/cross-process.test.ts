import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { open, readFile, readlink, utimes, writeFile, mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { hostname } from "node:os";
import { digestOf } from "@ferry/core";
import { hashWasmDigesters, ingestKey, openFsStore, type FsWriter } from "../src/index.ts";
import type { ChildArgs } from "./fixtures/ingest-child.ts";
import { bytes, codeOf, tempDir } from "./helpers.ts";

const here = fileURLToPath(new URL(".", import.meta.url));
const repoRoot = resolve(here, "../../..");
const childScript = join(here, "fixtures", "ingest-child.ts");

interface Child {
  proc: ChildProcess;
  lines: string[];
  /** Resolves with the first stdout line satisfying `pred`. */
  waitFor(pred: (line: string) => boolean): Promise<string>;
  exited: Promise<number | null>;
}

const children: Child[] = [];

function startChild(args: ChildArgs): Child {
  const proc = spawn(process.execPath, ["--import", "tsx", childScript, JSON.stringify(args)], {
    cwd: repoRoot,
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines: string[] = [];
  const waiters: Array<{ pred: (l: string) => boolean; resolve: (l: string) => void; reject: (e: Error) => void }> = [];
  let buf = "";
  proc.stdout!.on("data", (c: Buffer) => {
    buf += c.toString();
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      lines.push(line);
      for (const w of waiters.splice(0)) {
        if (w.pred(line)) w.resolve(line);
        else waiters.push(w);
      }
    }
  });
  const exited = new Promise<number | null>((r) => proc.once("exit", (code) => r(code)));
  void exited.then(() => {
    for (const w of waiters.splice(0)) w.reject(new Error(`child exited before the awaited line; got: ${lines.slice(-3).join(" | ")}`));
  });
  const child: Child = {
    proc,
    lines,
    exited,
    waitFor(pred) {
      const hit = lines.find(pred);
      if (hit !== undefined) return Promise.resolve(hit);
      return new Promise((resolve, reject) => waiters.push({ pred, resolve, reject }));
    },
  };
  children.push(child);
  return child;
}

async function kill9(c: Child): Promise<void> {
  c.proc.kill("SIGKILL");
  await c.exited;
}

let dir: { path: string; cleanup: () => Promise<void> };
beforeEach(async () => {
  dir = await tempDir();
});
afterEach(async () => {
  for (const c of children.splice(0)) if (c.proc.exitCode === null && c.proc.signalCode === null) await kill9(c);
  await dir.cleanup();
});

async function resumeAfterKill(wasm: boolean): Promise<FsWriter> {
  const root = join(dir.path, "store");
  const source = join(dir.path, "source.bin");
  const data = bytes(8 * 1024 * 1024 + 123);
  await writeFile(source, data);
  const child = startChild({
    mode: "write",
    root,
    ref: "layer-big",
    source,
    chunk: 200_000,
    wasm,
    writeBatchBytes: 1024 * 1024,
    checkpointBytes: 1024 * 1024,
  });
  // Kill it mid-ingest, once a few MiB are in.
  await child.waitFor((l) => l.startsWith("progress ") && Number(l.slice(9)) >= 3 * 1024 * 1024);
  await kill9(child);
  expect(child.lines).not.toContain("done");

  const store = await openFsStore(root, wasm ? { digesters: hashWasmDigesters } : {});
  const before = await store.status("layer-big");
  expect(before.offset).toBeGreaterThan(0);
  expect(before.offset).toBeLessThan(data.byteLength);
  // The dead child's lock is still on disk…
  const lock = JSON.parse(await readFile(join(root, "ingest", ingestKey("layer-big"), "lock"), "utf8"));
  expect(lock.pid).toBe(child.proc.pid);
  // …and is taken over at once, without waiting for any timeout.
  const w = (await store.writer({ ref: "layer-big" })) as FsWriter;
  expect(w.resumed.offset).toBe(before.offset);
  const lockNow = JSON.parse(await readFile(join(root, "ingest", ingestKey("layer-big"), "lock"), "utf8"));
  expect(lockNow.pid).toBe(process.pid);
  await w.write(data.subarray(w.resumed.offset));
  await w.commit(data.byteLength, digestOf(data));
  const r = await store.readerAt({ digest: digestOf(data) });
  expect(digestOf(await r.read(0, data.byteLength))).toBe(digestOf(data));
  await r.close();
  return w;
}

describe("cross-process ingests", () => {
  it("resumes an ingest whose writer was SIGKILLed (node:crypto: re-hashes the partial data)", async () => {
    const w = await resumeAfterKill(false);
    expect(w.resumed.restoredFromCheckpoint).toBe(0);
  });

  it("resumes from a saved hash-wasm checkpoint and re-hashes only the tail", async () => {
    const w = await resumeAfterKill(true);
    expect(w.resumed.restoredFromCheckpoint).toBeGreaterThanOrEqual(1024 * 1024);
    expect(w.resumed.restoredFromCheckpoint).toBeLessThanOrEqual(w.resumed.offset);
  });

  it("two processes racing on one ref: one acquires, the other gets Locked; a live holder is never taken over", async () => {
    const root = join(dir.path, "store");
    await openFsStore(root);
    const a = startChild({ mode: "hold", root, ref: "contended" });
    const b = startChild({ mode: "hold", root, ref: "contended" });
    await Promise.all([a.waitFor((l) => l === "ready"), b.waitFor((l) => l === "ready")]);
    a.proc.stdin!.write("go\n");
    b.proc.stdin!.write("go\n");
    const results = await Promise.all([a, b].map((c) => c.waitFor((l) => l === "acquired" || l === "locked")));
    expect([...results].sort()).toEqual(["acquired", "locked"]);
    const live = results[0] === "acquired" ? a : b;
    await (live === a ? b : a).exited; // the loser exits after reporting

    const store = await openFsStore(root, { staleLockMs: 5000 });
    expect(await codeOf(store.writer({ ref: "contended" }))).toBe("Locked");
    // An old mtime does not make a live holder on this host stale: the pid check decides.
    const lockPath = join(root, "ingest", ingestKey("contended"), "lock");
    const old = new Date(Date.now() - 3_600_000);
    await utimes(lockPath, old, old);
    expect(await codeOf(store.writer({ ref: "contended" }))).toBe("Locked");
    expect(await codeOf(store.abort("contended"))).toBe("Locked");
    expect(await store.expireIngests(0)).toEqual([]);

    await kill9(live);
    const w = await store.writer({ ref: "contended" });
    await w.write(Buffer.from("ok"));
    await w.commit(2, digestOf("ok"));
  });
});

describe("commits across processes", () => {
  it("two processes committing one digest under different refs: exactly one wins", async () => {
    const root = join(dir.path, "store");
    await openFsStore(root);
    const source = join(dir.path, "blob.bin");
    const data = bytes(2 * 1024 * 1024);
    await writeFile(source, data);
    const kids = [startChild({ mode: "commit", root, ref: "one", source }), startChild({ mode: "commit", root, ref: "two", source })];
    await Promise.all(kids.map((c) => c.waitFor((l) => l === "ready")));
    for (const c of kids) c.proc.stdin!.write("go\n");
    const results = await Promise.all(kids.map((c) => c.waitFor((l) => l === "committed" || l === "exists" || l.startsWith("error"))));
    expect([...results].sort()).toEqual(["committed", "exists"]);
    const store = await openFsStore(root);
    const r = await store.readerAt({ digest: digestOf(data) });
    expect(digestOf(await r.read(0, r.size))).toBe(digestOf(data));
    await r.close();
    // The loser's ingest is left closed and unlocked.
    const loser = results[0] === "exists" ? "one" : "two";
    expect((await store.status(loser)).offset).toBe(data.byteLength);
    await store.abort(loser);
  });
});

describe("lock owners on this host", () => {
  async function plant(root: string, ref: string, owner: Record<string, unknown>): Promise<void> {
    const store = await openFsStore(root);
    const w = await store.writer({ ref });
    await w.close();
    await writeFile(join(root, "ingest", ingestKey(ref), "lock"), JSON.stringify({ host: hostname(), token: "planted", acquiredAt: "", ...owner }));
  }

  it("a pid that exists with the recorded start time is live; a reused pid (other start time) is not", async () => {
    const root = join(dir.path, "store");
    const store = await openFsStore(root);
    const hasProc = await readFile("/proc/self/stat", "utf8").then(
      () => true,
      () => false,
    );
    await plant(root, "live", { pid: process.ppid });
    expect(await codeOf(store.writer({ ref: "live" }))).toBe("Locked");
    if (!hasProc) return; // no /proc: start times cannot be compared
    await plant(root, "reused", { pid: process.ppid, start: "1" });
    const w = await store.writer({ ref: "reused" });
    await w.close();
  });

  it("a pid that does not exist is dead", async () => {
    const root = join(dir.path, "store");
    const store = await openFsStore(root);
    await plant(root, "gone", { pid: 2 ** 22 + 12345 }); // above Linux's pid_max limit
    const w = await store.writer({ ref: "gone" });
    await w.close();
  });

  it("a holder in another pid namespace (a container with the host's name) is judged by its heartbeat, not its pid", async () => {
    const root = join(dir.path, "store");
    const store = await openFsStore(root, { staleLockMs: 5000 });
    // Its pid does not exist here, but it is alive there: a fresh heartbeat says so.
    await plant(root, "contained", { pid: 2 ** 22 + 12345, pidSpace: "another-boot pid:[1]" });
    expect(await codeOf(store.writer({ ref: "contained" }))).toBe("Locked");
    // Once the heartbeat is stale, it is gone.
    const lock = join(root, "ingest", ingestKey("contained"), "lock");
    const old = new Date(Date.now() - 60_000);
    await utimes(lock, old, old);
    const w = await store.writer({ ref: "contained" });
    await w.close();
    // In our own namespace a pid that does not exist is dead at once, heartbeat or not.
    const own = await readFile("/proc/sys/kernel/random/boot_id", "utf8").then(
      async (boot) => `${boot.trim()} ${await readlink("/proc/self/ns/pid")}`,
      () => undefined,
    );
    if (own === undefined) return; // not Linux
    await plant(root, "same-space", { pid: 2 ** 22 + 12345, pidSpace: own });
    await (await store.writer({ ref: "same-space" })).close();
  });
});

describe("a lock taker that stalls", () => {
  // A taker judges the holder dead, then stalls (SIGSTOP, a VM pause) past the takeover guard's
  // age; meanwhile a second taker takes the lock. The first must not remove the live lock when
  // it wakes. The stall is a delayed rename in a child process (its own fs/promises).
  it("does not remove the lock a newer holder took meanwhile", async () => {
    const dir2 = await tempDir();
    try {
      const lockPath = join(dir2.path, "index.json.lock");
      const script = `
        import fsp from "node:fs/promises";
        import { syncBuiltinESMExports } from "node:module";
        import { writeFile } from "node:fs/promises";
        import { hostname } from "node:os";
        const path = ${JSON.stringify(lockPath)};
        // Whatever the taker does to the dead holder's file first (unlink, rename) waits 11 s.
        let stalled = false;
        const stall = async (p) => {
          if (p === path && !stalled) {
            stalled = true;
            await new Promise((r) => setTimeout(r, 11_000));
          }
        };
        const { rename, unlink } = fsp;
        fsp.rename = async (a, b) => (await stall(a), rename(a, b));
        fsp.unlink = async (a) => (await stall(a), unlink(a));
        syncBuiltinESMExports();
        const { FileLock } = await import(${JSON.stringify(new URL("../src/file-lock.ts", import.meta.url).pathname)});
        await writeFile(path, JSON.stringify({ pid: 2 ** 22 + 12345, host: hostname(), token: "dead", acquiredAt: "" }));
        const first = FileLock.tryAcquire(path, { staleMs: 30000 });
        await new Promise((r) => setTimeout(r, 300));
        const second = await FileLock.acquire(path, "test", { waitMs: 20000, staleMs: 30000 });
        const got = await first;
        console.log(JSON.stringify({ first: got.lock !== undefined, secondHolds: await second.stillHeld() }));
        process.exit(0);`;
      const out = await new Promise<string>((res, rej) => {
        const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { cwd: fileURLToPath(new URL("..", import.meta.url)) });
        let text = "";
        child.stdout.on("data", (d: Buffer) => (text += d.toString()));
        child.stderr.on("data", (d: Buffer) => (text += d.toString()));
        child.on("error", rej);
        child.on("close", () => res(text));
      });
      expect(JSON.parse(out.trim().split("\n").at(-1) ?? "{}")).toEqual({ first: false, secondHolds: true });
    } finally {
      await dir2.cleanup();
    }
  }, 40_000);
});

describe("locks held from another host", () => {
  async function plantForeignLock(root: string, ref: string, ageMs: number): Promise<void> {
    const store = await openFsStore(root);
    const w = await store.writer({ ref });
    await w.close();
    const path = join(root, "ingest", ingestKey(ref), "lock");
    await writeFile(path, JSON.stringify({ pid: 1, host: `not-${hostname()}`, token: "t", acquiredAt: new Date().toISOString() }));
    const t = new Date(Date.now() - ageMs);
    await utimes(path, t, t);
  }

  it("is respected while its heartbeat is fresh and taken over once stale", async () => {
    const root = join(dir.path, "store");
    await mkdir(root);
    await plantForeignLock(root, "remote", 0);
    const store = await openFsStore(root, { staleLockMs: 5000 });
    const err = await store.writer({ ref: "remote" }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as { code?: string }).code).toBe("Locked");
    expect(String((err as Error).message)).toContain(`not-${hostname()}`);
    await plantForeignLock(root, "stale", 60_000);
    const w = await store.writer({ ref: "stale" });
    await w.close();
  });

  it("a holder's heartbeat keeps its lock fresh", async () => {
    const root = join(dir.path, "store");
    const store = await openFsStore(root, { staleLockMs: 3000 });
    const w = await store.writer({ ref: "beat" });
    const path = join(root, "ingest", ingestKey("beat"), "lock");
    const old = new Date(Date.now() - 60_000);
    await utimes(path, old, old);
    const fh = await open(path, "r");
    const deadline = Date.now() + 10_000;
    let mtime = (await fh.stat()).mtimeMs;
    while (mtime < Date.now() - 30_000 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      mtime = (await fh.stat()).mtimeMs;
    }
    await fh.close();
    expect(mtime).toBeGreaterThan(Date.now() - 30_000);
    await w.close();
  });
});
