import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { digestOf, isDigest, type Descriptor, type StatusEvent } from "@ferry/core";
import { describeWithRegistry } from "@ferry/testkit";
import { runCli, seedImage, type SeededImage, useRegistry } from "./helpers.ts";

const blobEventTypes = new Set(["waiting", "exists", "skipped", "downloading", "uploading", "resumed", "committing", "done", "mounted"]);
const otherTypes = new Set(["resolving", "resolved", "retrying", "error", "tagged", "progress"]);

const env = useRegistry();
let img: SeededImage;
beforeAll(async () => {
  img = await seedImage(env.reg.host, "json/app:1", join(env.tmp.dir, "layout"), {
    layers: 3,
    layerSize: 300_000,
    platforms: ["linux/amd64", "linux/arm64"],
  });
});

/** The final screen of a terminal fed `out`: enough of VT100 for cli-progress (cursor up/down, column, erase line/below). */
function replayTerminal(out: string): string {
  const lines: string[] = [""];
  let row = 0;
  let col = 0;
  let saved = 0;
  for (const tok of out.split(/(\x1b\[[0-9;?]*[A-Za-z]|\x1b[78]|\n|\r)/)) {
    if (tok === "") continue;
    let m: RegExpExecArray | null;
    if (tok === "\n") {
      row++;
      col = 0;
    } else if (tok === "\r") col = 0;
    else if (tok === "\x1b7") saved = row;
    else if (tok === "\x1b8") row = saved;
    else if ((m = /^\x1b\[(\d*)([A-Za-z])$/.exec(tok))) {
      const n = Number(m[1] || "1");
      if (m[2] === "A") row = Math.max(0, row - n);
      else if (m[2] === "B") row += n;
      else if (m[2] === "G") col = n - 1;
      else if (m[2] === "K") lines[row] = (lines[row] ?? "").slice(0, col);
      else if (m[2] === "J") {
        lines[row] = (lines[row] ?? "").slice(0, col);
        lines.length = row + 1;
      }
    } else if (!tok.startsWith("\x1b")) {
      const line = (lines[row] ?? "").padEnd(col);
      lines[row] = line.slice(0, col) + tok + line.slice(col + tok.length);
      col += tok.length;
    }
    while (lines.length <= row) lines.push("");
  }
  return lines.join("\n");
}

function parseLines(stdout: string): Array<Record<string, unknown>> {
  const lines = stdout.split("\n").filter((l) => l !== "");
  return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
}

/**
 * Checks a `pull --json` output of every platform of `img` into `store`: only known event types in
 * the documented order, well-formed blob events, each blob done once with its size, offsets never
 * going back, totals equal to the image, and the bytes in the store.
 */
async function expectConsistentPull(stdout: string, img: SeededImage, store: string): Promise<void> {
  const lines = parseLines(stdout);
  const events = lines.slice(0, -1) as unknown as StatusEvent[];
  const result = lines.at(-1) as { type: string; root: Descriptor; name: string; totals: { bytesDone: number; bytesTotal: number; blobsDone: number } };

  // Envelope: known types only, in the documented order.
  for (const e of events) expect(blobEventTypes.has(e.type) || otherTypes.has(e.type), e.type).toBe(true);
  expect(events[0]?.type).toBe("resolving");
  expect(events[1]).toMatchObject({ type: "resolved", reference: img.reference, descriptor: { digest: img.root.digest } });
  expect(result.type).toBe("result");
  expect(result.root.digest).toBe(img.root.digest);

  // Every blob event is well formed.
  const blobs = events.filter((e) => blobEventTypes.has(e.type)) as Array<StatusEvent & { ref: string; digest: string; kind: string; total: number; time: number }>;
  for (const e of blobs) {
    expect(isDigest(e.digest)).toBe(true);
    expect(e.ref.endsWith(e.digest)).toBe(true);
    expect(["index", "manifest", "config", "layer", "blob"]).toContain(e.kind);
    expect(Number.isSafeInteger(e.total) && e.total >= 0).toBe(true);
    expect(typeof e.time).toBe("number");
  }

  // Each blob of the image is done exactly once, with its real size.
  const expected = new Map<string, number>([[img.root.digest, img.root.size]]);
  for (const d of [...img.manifests, ...img.configs, ...img.layers]) expected.set(d.digest, d.size);
  const done = blobs.filter((e) => e.type === "done");
  expect(new Set(done.map((e) => e.digest))).toEqual(new Set(expected.keys()));
  expect(done).toHaveLength(expected.size);
  for (const e of done) expect(e.total).toBe(expected.get(e.digest));

  // Layers report their bytes as they move, offsets never going back.
  const offsets = new Map<string, number>();
  for (const e of blobs) {
    if (e.type !== "downloading") continue;
    const o = (e as unknown as { offset: number }).offset;
    expect(o).toBeGreaterThanOrEqual(offsets.get(e.ref) ?? 0);
    expect(o).toBeLessThanOrEqual(e.total);
    offsets.set(e.ref, o);
  }

  // Totals: the last progress event and the result agree with the image size.
  const totalBytes = [...expected.values()].reduce((a, b) => a + b, 0);
  const progress = events.filter((e) => e.type === "progress") as Array<{ bytesDone: number; bytesTotal: number }>;
  expect(progress.length).toBeGreaterThan(0);
  expect(progress.at(-1)).toMatchObject({ bytesDone: totalBytes, bytesTotal: totalBytes });
  expect(result.totals).toMatchObject({ bytesDone: totalBytes, bytesTotal: totalBytes, blobsDone: expected.size });
  expect(events.some((e) => e.type === "tagged")).toBe(true);

  // And the store really holds the bytes.
  const layer = img.layers[0] as Descriptor;
  const hex = layer.digest.slice("sha256:".length);
  expect(digestOf(await readFile(join(store, "blobs", "sha256", hex)))).toBe(layer.digest);
}

describeWithRegistry("ferry pull --json from the real docker-registry", (ctx) => {
  it("parses into the same consistent stream for a two-platform index", async () => {
    const real = await seedImage(ctx.registry.host, "json/real:1", join(env.tmp.dir, "layout-real"), {
      layers: 2,
      layerSize: 200_000,
      platforms: ["linux/amd64", "linux/arm64"],
    });
    const store = join(env.tmp.dir, "store-real");
    const r = await runCli(["pull", real.reference, "--all-platforms", "--store", store, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    await expectConsistentPull(r.stdout, real, store);
  });
});

describe("ferry pull --json", () => {
  it("prints only NDJSON status events and a final result, consistent with the image", async () => {
    const store = join(env.tmp.dir, "store-json");
    const r = await runCli(["pull", img.reference, "--all-platforms", "--store", store, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    await expectConsistentPull(r.stdout, img, store);
  });

  it("a second pull reports the root as existing and transfers nothing", async () => {
    const store = join(env.tmp.dir, "store-json");
    const r = await runCli(["pull", img.reference, "--all-platforms", "--store", store, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const lines = parseLines(r.stdout);
    expect(lines.some((e) => e.type === "exists" && e.digest === img.root.digest)).toBe(true);
    expect(lines.some((e) => e.type === "downloading")).toBe(false);
    expect((lines.at(-1) as { totals: { bytesTransferred: number } }).totals.bytesTransferred).toBe(0);
  });

  it("--platform pulls one platform's manifest, config and layers only", async () => {
    const store = join(env.tmp.dir, "store-arm");
    const r = await runCli(["pull", img.reference, "--platform", "linux/arm64", "--store", store, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const lines = parseLines(r.stdout);
    const arm = img.images.find((i) => i.platform.architecture === "arm64");
    const amd = img.images.find((i) => i.platform.architecture === "amd64");
    const doneDigests = new Set(lines.filter((e) => e.type === "done").map((e) => e.digest));
    for (const l of arm?.layers ?? []) expect(doneDigests.has(l.digest)).toBe(true);
    for (const l of amd?.layers ?? []) expect(doneDigests.has(l.digest)).toBe(false);
    expect(lines.some((e) => e.type === "skipped" && e.digest === amd?.manifest.digest)).toBe(true);
  });

  it("pulls a Docker schema 2 manifest list the same way (kinds from the Docker media types)", async () => {
    const docker = await seedImage(env.reg.host, "json/docker:1", join(env.tmp.dir, "layout-docker"), {
      layers: 1,
      layerSize: 50_000,
      platforms: ["linux/amd64", "linux/arm64"],
      format: "docker",
    });
    const r = await runCli(["pull", docker.reference, "--all-platforms", "--store", join(env.tmp.dir, "store-docker"), "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const done = parseLines(r.stdout).filter((e) => e.type === "done") as Array<{ kind: string; mediaType: string; digest: string }>;
    expect(done.find((e) => e.digest === docker.root.digest)).toMatchObject({
      kind: "index",
      mediaType: "application/vnd.docker.distribution.manifest.list.v2+json",
    });
    expect(done.filter((e) => e.kind === "manifest")).toHaveLength(2);
    expect(done.filter((e) => e.kind === "config")).toHaveLength(2);
    expect(done.filter((e) => e.kind === "layer")).toHaveLength(2);
  });

  it("on a terminal draws a totals bar and one bar per blob, ending in their final states", async () => {
    const r = await runCli(["pull", img.reference, "--store", join(env.tmp.dir, "store-tty"), "--all-platforms"], { tty: true });
    expect(r.code, r.stderr).toBe(0);
    // cli-progress redraws in place (and only the lines that changed): replay the escape codes.
    const screen = replayTerminal(r.stderr);
    expect(screen).toMatch(/^total +done +\|=+\| /m);
    for (const d of [...img.layers, ...img.configs, ...img.manifests, img.root]) {
      const short = d.digest.slice(0, "sha256:".length + 12);
      expect(screen).toMatch(new RegExp(`^[a-z]+-${short} +done +\\|=+\\|`, "m"));
    }
    expect(r.stdout).toMatch(/^pulled /);
  });

  it("on a small terminal keeps to its height by dropping finished rows", async () => {
    const r = await runCli(["pull", img.reference, "--store", join(env.tmp.dir, "store-tty-small"), "--all-platforms"], { tty: true, rows: 8 });
    expect(r.code, r.stderr).toBe(0);
    const screen = replayTerminal(r.stderr).split("\n").filter((l) => l.trim() !== "");
    // 11 blobs, but at most rows - 2 bar rows plus the totals row.
    expect(screen.length).toBeLessThanOrEqual(7);
    expect(screen[0]).toMatch(/^total +done /);
    expect(screen.slice(1).every((l) => / done /.test(l))).toBe(true);
  });

  it("plain progress lines go to stderr and the summary to stdout; --quiet prints just the digest", async () => {
    const plain = await runCli(["pull", img.reference, "--store", join(env.tmp.dir, "store-plain"), "--platform", "linux/amd64"]);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stderr).toMatch(/^resolved /m);
    expect(plain.stderr).toMatch(/^layer-sha256:[0-9a-f]{12} done /m);
    expect(plain.stdout).toMatch(new RegExp(`^pulled ${img.reference.replace(/[.:/]/g, "\\$&")} ${img.root.digest}`));
    const quiet = await runCli(["pull", img.reference, "--store", join(env.tmp.dir, "store-quiet"), "-q"]);
    expect(quiet.code).toBe(0);
    expect(quiet.stdout).toBe(`${img.root.digest}\n`);
    expect(quiet.stderr).toBe("");
  });
});
