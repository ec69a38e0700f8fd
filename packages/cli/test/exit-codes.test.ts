import { createServer } from "node:net";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createRegistry, type ListeningRegistry, type Registry } from "@ferry/registry";
import { buildImage } from "@ferry/testkit";
import { commandTable } from "../src/cli.ts";
import { ExitCode, exitCodeFor } from "../src/exit-codes.ts";
import { runCli, seedImage, spawnCli, tempDir, useRegistry } from "./helpers.ts";
import { FerryError, InternalError, NetworkError, NotFoundError, UnauthorizedError } from "@ferry/core";

const env = useRegistry();

/** A loopback port nothing listens on. */
async function deadPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

describe("exit codes", () => {
  it("maps core error codes", () => {
    expect(exitCodeFor(new NotFoundError("x"))).toBe(3);
    expect(exitCodeFor(new UnauthorizedError("x"))).toBe(4);
    expect(exitCodeFor(new FerryError("Denied", "x"))).toBe(4);
    expect(exitCodeFor(new NetworkError("x"))).toBe(5);
    expect(exitCodeFor(new FerryError("TooManyRequests", "x"))).toBe(5);
    expect(exitCodeFor(new FerryError("InvalidReference", "x"))).toBe(2);
    expect(exitCodeFor(new FerryError("DigestMismatch", "x"))).toBe(1);
    expect(exitCodeFor(new InternalError("x"))).toBe(1);
    expect(exitCodeFor(new Error("plain"))).toBe(1);
  });

  it("2 for usage errors, with a pointer to the command's help", async () => {
    const unknownOption = await runCli(["pull", "x/y:1", "--nope"]);
    expect(unknownOption.code).toBe(ExitCode.Usage);
    expect(unknownOption.stderr).toMatch(/--nope/);
    expect(unknownOption.stderr).toMatch(/ferry pull --help/);
    expect((await runCli(["pull"])).code).toBe(2);
    expect((await runCli(["resolve", "a", "b"])).code).toBe(2);
    expect((await runCli(["frobnicate"])).code).toBe(2);
    expect((await runCli(["resolve", "UPPER/Case:1"])).code).toBe(2);
    expect((await runCli(["content", "path", "sha256:nothex"])).code).toBe(2);
    expect((await runCli(["pull", "x/y:1", "--concurrency", "0"])).code).toBe(2);
    for (const n of ["1e9", "0x10", "2000"]) expect((await runCli(["pull", "x/y:1", "--concurrency", n])).code).toBe(2);
    const noStore = await runCli(["content", "ls", "--store", ""]);
    expect(noStore.code).toBe(2);
    expect(noStore.stderr).toMatch(/--store needs a directory/);
    const both = await runCli(["pull", "x/y:1", "--platform", "linux/amd64", "--all-platforms"]);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--platform and --all-platforms exclude each other/);
    expect((await runCli(["content", "ingest", "--expected-digest", `sha256:${"0".repeat(64)}`])).code).toBe(2);
    // After `--` everything is an argument, even what looks like an option.
    const dashed = await runCli(["content", "path", "--", "--not-an-option"]);
    expect(dashed.code).toBe(2);
    expect(dashed.stderr).toMatch(/InvalidDigest/);
  });

  it("0 for --help and --version", async () => {
    const help = await runCli(["content", "ingest", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: ferry content ingest/);
    const group = await runCli(["content", "--help"]);
    expect(group.code).toBe(0);
    expect(group.stdout).toMatch(/content ingest --ref REF/);
    expect(group.stdout).toMatch(/content prune/);
    expect((await runCli(["content"])).code).toBe(2);
    expect((await runCli([])).code).toBe(2);
    const v = await runCli(["--version"]);
    expect(v.stdout).toMatch(/^ferry \d+\.\d+\.\d+/);
  });

  it("3 for a missing tag, repository or layout", async () => {
    const img = await seedImage(env.reg.host, "codes/app:1", join(env.tmp.dir, "layout"));
    expect((await runCli(["resolve", img.reference])).code).toBe(0);
    const missing = await runCli(["resolve", `${env.reg.host}/codes/app:nope`]);
    expect(missing.code).toBe(ExitCode.NotFound);
    expect(missing.stderr).toMatch(/NotFound/);
    expect((await runCli(["pull", `${env.reg.host}/codes/other:1`, "--store", join(env.tmp.dir, "s")])).code).toBe(3);
    expect((await runCli(["copy", `oci:${join(env.tmp.dir, "no-such-layout")}:x`, `${env.reg.host}/a:1`])).code).toBe(3);
    // A name the layout cannot record (a registry repository may hold `__`): refused before any
    // byte moves, not after the whole pull.
    const dunder = await runCli(["pull", `${env.reg.host}/codes/a__b:1`, "--store", join(env.tmp.dir, "s3")]);
    expect(dunder.code).toBe(ExitCode.Usage);
    expect(dunder.stderr).toMatch(/InvalidReference/);
    expect((await runCli(["content", "ls", "-q", "--store", join(env.tmp.dir, "s3")])).stdout).toBe("");
    // A file where the store should be: named as such, not a raw EEXIST from mkdir.
    const file = join(env.tmp.dir, "a-file");
    await writeFile(file, "x");
    const notDir = await runCli(["pull", img.reference, "--store", file]);
    expect(notDir.code).toBe(ExitCode.Failure);
    expect(notDir.stderr).toMatch(/is not a directory.*\(FailedPrecondition\)/);
    // --json also gets the failure as a record on stdout.
    const json = await runCli(["resolve", "--json", `${env.reg.host}/codes/app:nope`]);
    expect(JSON.parse(json.stdout.trim())).toMatchObject({ type: "error", code: "NotFound", exitCode: 3 });
    // A failed pull reports through its event stream once (no second error record).
    const pullJson = await runCli(["pull", "--json", `${env.reg.host}/codes/app:nope`, "--store", join(env.tmp.dir, "s2")]);
    expect(pullJson.code).toBe(3);
    const records = pullJson.stdout.trim().split("\n").map((l) => JSON.parse(l) as { type: string; code?: string });
    expect(records.filter((r) => r.type === "error")).toEqual([expect.objectContaining({ code: "NotFound" })]);
    // A pull refused before it starts still says why on stdout.
    const early = await runCli(["pull", "--json", img.reference, "--concurrency", "x"]);
    expect(early.code).toBe(2);
    expect(JSON.parse(early.stdout.trim())).toMatchObject({ type: "error", code: "InvalidArgument", exitCode: 2 });
  });

  it("4 when the registry wants credentials", async () => {
    const guarded: Registry = createRegistry({ auth: { users: { alice: "secret" } } });
    const l: ListeningRegistry = await guarded.listen(0, "127.0.0.1");
    try {
      const r = await runCli(["resolve", `${l.host}/private/app:1`]);
      expect(r.code, r.stderr).toBe(ExitCode.Auth);
      const wrong = await runCli(["resolve", `${l.host}/private/app:1`, "--user", "alice:wrong"]);
      expect(wrong.code, wrong.stderr).toBe(ExitCode.Auth);
      expect(wrong.stderr).not.toContain("wrong");
      // With the right credentials the same command gets past auth: the tag is simply missing.
      const right = await runCli(["resolve", `${l.host}/private/app:1`, "--user", "alice:secret"]);
      expect(right.code, right.stderr).toBe(ExitCode.NotFound);
      expect((await runCli(["resolve", `${l.host}/private/app:1`, "--user", "nocolon"])).code).toBe(ExitCode.Usage);
      // And a push with them works end to end.
      const layout = join(env.tmp.dir, "auth-layout");
      const built = await buildImage({ dir: layout, layers: 1, layerSize: 10_000, name: "v1" });
      const up = await runCli(["copy", `oci:${layout}:v1`, `${l.host}/private/app:1`, "--user", "alice:secret", "-q"]);
      expect(up.code, up.stderr).toBe(0);
      expect(up.stdout).toBe(`${built.root.digest}\n`);
      expect((await runCli(["copy", `oci:${layout}:v1`, `${l.host}/private/app:2`])).code).toBe(ExitCode.Auth);
    } finally {
      await guarded.close();
    }
  });

  it("5 when the registry cannot be reached, and as a real process too", async () => {
    const port = await deadPort();
    const r = await spawnCli(["resolve", `127.0.0.1:${port}/app:1`]);
    expect(r.code, r.stderr).toBe(ExitCode.Network);
    expect(r.stderr).toMatch(/^ferry: .*\(Network\)/m);
  });

  it("the bin reports usage (2) and not-found (3) as a process", async () => {
    expect((await spawnCli(["--bogus"])).code).toBe(2);
    const nf = await spawnCli(["resolve", `${env.reg.host}/codes/app:nope`]);
    expect(nf.code).toBe(3);
  });
});

describe("command table", () => {
  it("names and summaries agree with the command modules it loads", async () => {
    for (const entry of commandTable) {
      const c = await entry.load();
      expect(c.name).toBe(entry.name);
      expect(c.summary).toBe(entry.summary);
    }
  });
});
