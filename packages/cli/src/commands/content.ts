/**
 * `ferry content …`: the content store's plumbing, after containerd's early `dist` tool —
 * ingest stdin under a ref (resumable), list ingests and blobs, print a blob's path, delete,
 * prune. Composes with `ferry fetch`, `jq` and `xargs` into a parallel pull (see docs/cli.md).
 */
import { join } from "node:path";
import {
  copyBlob,
  digestAlgorithm,
  digestHex,
  InvalidArgumentError,
  isAlreadyExists,
  isManifestLike,
  LocalResolver,
  NotFoundError,
  openWriter,
  parseDigest,
  readBlob,
  childrenOf,
  MaxManifestBytes,
  type Descriptor,
  type Digest,
  type Info,
} from "@ferry/core";
import type { FsStore } from "@ferry/store-fs";
import { parseCount, storeHelp, storeOption, stringOpt, type Command, type CommandContext } from "../command.ts";
import { parseDuration } from "../duration.ts";
import { openLayout, storeDir } from "../store.ts";
import { exitCodeFor, ExitCode } from "../exit-codes.ts";
import { write } from "../io.ts";
import { formatBytes, formatDuration } from "../progress/format.ts";

async function openStore(ctx: CommandContext, mustExist: boolean): Promise<FsStore> {
  return openLayout(storeDir(stringOpt(ctx.values, "store"), ctx.io.cwd), mustExist);
}

/** Where a committed blob lives in an OCI layout. */
export function blobPath(store: FsStore, digest: Digest): string {
  return join(store.root, "blobs", digestAlgorithm(digest), digestHex(digest));
}

/** One record per line on stdout: the record as JSON with `--json`, its key with `-q`, else a table row under `header`. */
async function printListing<T>(ctx: CommandContext, items: readonly T[], o: { key(x: T): string; header: string; row(x: T): string }): Promise<void> {
  const lines = ctx.flags.json ? items.map((x) => JSON.stringify(x)) : ctx.flags.quiet ? items.map(o.key) : [o.header, ...items.map(o.row)];
  await write(ctx.io.stdout, lines.map((l) => `${l}\n`).join(""));
}

export const ingestCommand: Command = {
  name: "content ingest",
  summary: "write stdin into the store under a ref (resumable), verify and commit it",
  usage: "content ingest --ref REF --expected-digest DIGEST [--expected-size N] [--store DIR]",
  description:
    "Reads the blob from stdin. When an ingest with REF already holds N bytes (an earlier run was interrupted),\n" +
    "the first N bytes of stdin are skipped and writing continues there. Another process ingesting the same REF\n" +
    "is waited for. Content that is already committed is success. Size and digest are checked at commit.",
  options: { ...storeOption, ref: { type: "string" }, "expected-digest": { type: "string" }, "expected-size": { type: "string" } },
  optionHelp: [
    ["--ref REF", "ingest key; the same key resumes (e.g. layer-sha256:…)"],
    ["--expected-digest DIGEST", "digest the content must have"],
    ["--expected-size N", "size the content must have; default unchecked"],
    storeHelp,
  ],
  minArgs: 0,
  maxArgs: 0,
  async run(ctx) {
    const ref = stringOpt(ctx.values, "ref");
    const digestText = stringOpt(ctx.values, "expected-digest");
    if (ref === undefined) throw new InvalidArgumentError("--ref is required");
    if (digestText === undefined) throw new InvalidArgumentError("--expected-digest is required");
    const expected = parseDigest(digestText);
    const sizeText = stringOpt(ctx.values, "expected-size");
    let size: number | undefined;
    if (sizeText !== undefined) {
      size = parseCount(sizeText, "--expected-size", 0, Number.MAX_SAFE_INTEGER);
    }
    const store = await openStore(ctx, false);
    try {
      // Committed already: nothing to read (the writer would refuse the ref's expected digest anyway).
      await store.info(expected);
      if (!ctx.flags.quiet) await write(ctx.io.stderr, `${ref}: ${expected} exists\n`);
      return;
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
    let writer;
    try {
      writer = await openWriter(store, { ref, expected, signal: ctx.signal, ...(size !== undefined ? { total: size } : {}) });
    } catch (err) {
      // Another process committed it while we waited for its lock.
      if (isAlreadyExists(err)) return;
      throw err;
    }
    const outcome = await copyBlob(writer, ctx.io.stdin, { expected, signal: ctx.signal, ...(size !== undefined ? { size } : {}) });
    if (ctx.flags.json) await write(ctx.io.stdout, `${JSON.stringify({ ref, digest: expected, outcome })}\n`);
  },
};

export const activeCommand: Command = {
  name: "content active",
  summary: "list ingests in progress (or interrupted)",
  usage: "content active [--store DIR]",
  options: { ...storeOption },
  optionHelp: [storeHelp],
  minArgs: 0,
  maxArgs: 0,
  async run(ctx) {
    const store = await openStore(ctx, true);
    const list = await store.listStatuses();
    const now = Date.now();
    await printListing(ctx, list, {
      key: (s) => s.ref,
      header: `${"REF".padEnd(80)} ${"OFFSET".padStart(12)} ${"TOTAL".padStart(12)}  UPDATED`,
      row: (s) =>
        `${s.ref.padEnd(80)} ${formatBytes(s.offset).padStart(12)} ${(s.total > 0 ? formatBytes(s.total) : "?").padStart(12)}  ${formatDuration(now - s.updatedAt.getTime())} ago`,
    });
  },
};

export const lsCommand: Command = {
  name: "content ls",
  summary: "list committed blobs",
  usage: "content ls [-q] [--store DIR]",
  description: "With -q (--quiet) prints only the digests; with --json one Info object per line.",
  options: { ...storeOption },
  optionHelp: [storeHelp],
  minArgs: 0,
  maxArgs: 0,
  async run(ctx) {
    const store = await openStore(ctx, true);
    const infos: Info[] = [];
    await store.walk((info) => void infos.push(info));
    infos.sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0));
    await printListing(ctx, infos, {
      key: (i) => i.digest,
      header: `${"DIGEST".padEnd(71)} ${"SIZE".padStart(10)}  CREATED                   LABELS`,
      row: (i) => {
        const labels = Object.entries(i.labels).map(([k, v]) => `${k}=${v}`).join(",");
        return `${i.digest.padEnd(71)} ${formatBytes(i.size).padStart(10)}  ${i.createdAt.toISOString()}  ${labels}`;
      },
    });
  },
};

export const pathCommand: Command = {
  name: "content path",
  summary: "print the file path of a committed blob",
  usage: "content path DIGEST [--store DIR]",
  options: { ...storeOption },
  optionHelp: [storeHelp],
  minArgs: 1,
  maxArgs: 1,
  async run(ctx) {
    const digest = parseDigest(ctx.positionals[0]);
    const store = await openStore(ctx, true);
    await store.info(digest); // NotFound → exit 3
    await write(ctx.io.stdout, `${blobPath(store, digest)}\n`);
  },
};

export const rmCommand: Command = {
  name: "content rm",
  summary: "delete committed blobs",
  usage: "content rm DIGEST… [--store DIR]",
  description: "Deletes each blob; prints each deleted digest. A missing one is reported and the rest still deleted (exit 3).",
  options: { ...storeOption },
  optionHelp: [storeHelp],
  minArgs: 1,
  maxArgs: Number.POSITIVE_INFINITY,
  async run(ctx) {
    const digests = ctx.positionals.map((p) => parseDigest(p));
    const store = await openStore(ctx, true);
    let code: number = ExitCode.Ok;
    for (const d of digests) {
      try {
        await store.delete(d);
        if (!ctx.flags.quiet) await write(ctx.io.stdout, `${d}\n`);
      } catch (err) {
        if (!(err instanceof NotFoundError)) throw err;
        await write(ctx.io.stderr, `ferry: ${d}: not found\n`);
        code = exitCodeFor(err);
      }
    }
    return code;
  },
};

export const pruneCommand: Command = {
  name: "content prune",
  summary: "remove expired ingests and blobs no name refers to",
  usage: "content prune [--ingest-age D] [--blob-age D] [--dry-run] [--store DIR]",
  description:
    "Removes ingests untouched for longer than --ingest-age (a live writer's ingest is never removed), then blobs\n" +
    "not reachable from any name of the store (names → indexes → manifests → configs and layers, and from a\n" +
    "manifest to the manifests whose subject it is: signatures, SBOMs) and older than\n" +
    "--blob-age (the grace period protects blobs of a pull in progress, which records its name last).",
  options: {
    ...storeOption,
    "ingest-age": { type: "string" },
    "blob-age": { type: "string" },
    "dry-run": { type: "boolean" },
  },
  optionHelp: [
    ["--ingest-age D", "expire ingests idle longer than D (30s, 10m, 24h, 7d); default 24h"],
    ["--blob-age D", "only remove unreferenced blobs created more than D ago; default 1h"],
    ["--dry-run", "print what would be removed, remove nothing"],
    storeHelp,
  ],
  minArgs: 0,
  maxArgs: 0,
  async run(ctx) {
    const store = await openStore(ctx, true);
    const ingestAge = parseDuration(stringOpt(ctx.values, "ingest-age") ?? "24h", "--ingest-age");
    const blobAge = parseDuration(stringOpt(ctx.values, "blob-age") ?? "1h", "--blob-age");
    const dry = ctx.values["dry-run"] === true;
    const now = Date.now();
    const out: string[] = [];

    let ingests: string[];
    if (dry) {
      ingests = (await store.listStatuses()).filter((s) => now - s.updatedAt.getTime() > ingestAge).map((s) => s.ref);
    } else {
      ingests = await store.expireIngests(ingestAge);
    }
    for (const ref of ingests) out.push(ctx.flags.json ? JSON.stringify({ type: "ingest", ref }) : `ingest ${ref}`);

    const reachable = await reachableDigests(store);
    const victims: Info[] = [];
    await store.walk((info) => {
      if (!reachable.has(info.digest) && now - info.createdAt.getTime() > blobAge) victims.push(info);
    });
    let freed = 0;
    let removed = 0;
    let heldBack = 0;
    for (const v of victims) {
      if (!dry) {
        // A transfer into the store may be about to name what looks unreferenced now (a pull
        // reusing old blobs): asked before each removal, since one may start at any time.
        if ((await store.activeLeases()) > 0) {
          heldBack = victims.length - removed;
          break;
        }
        try {
          await store.delete(v.digest);
        } catch (err) {
          if (err instanceof NotFoundError) continue; // removed meanwhile
          throw err;
        }
      }
      freed += v.size;
      removed++;
      out.push(ctx.flags.json ? JSON.stringify({ type: "blob", digest: v.digest, size: v.size }) : `blob ${v.digest} ${formatBytes(v.size)}`);
    }
    if (heldBack > 0) {
      out.push(
        ctx.flags.json
          ? JSON.stringify({ type: "held", blobs: heldBack, reason: "a transfer into the store is in progress" })
          : `kept ${heldBack} unreferenced blobs: a transfer into the store is in progress (run prune again later)`,
      );
    }
    if (!ctx.flags.quiet && !ctx.flags.json) {
      out.push(`${dry ? "would remove" : "removed"} ${ingests.length} ingests, ${dry ? victims.length : removed} blobs (${formatBytes(freed)})`);
    }
    if (!ctx.flags.quiet || ctx.flags.json) await write(ctx.io.stdout, out.map((l) => `${l}\n`).join(""));
  },
};

/**
 * Every digest reachable from the store's index.json entries (named or not: skopeo writes
 * `oci:DIR` without a name), and from each reached manifest to the manifests
 * whose `subject` it is (signatures, SBOMs pulled with `referrers` have no name of their own);
 * manifests missing from the store end the walk there.
 */
async function reachableDigests(store: FsStore): Promise<Set<string>> {
  const seen = new Set<string>();
  const referrers = await new LocalResolver(store).referrersBySubject();
  const queue: Descriptor[] = await store.listRoots();
  while (queue.length > 0) {
    const d = queue.pop() as Descriptor;
    if (seen.has(d.digest)) continue;
    seen.add(d.digest);
    queue.push(...(referrers.get(d.digest) ?? []));
    if (!isManifestLike(d.mediaType)) continue;
    let bytes: Uint8Array;
    try {
      bytes = await readBlob(store, d, { maxSize: MaxManifestBytes });
    } catch (err) {
      if (err instanceof NotFoundError) continue;
      throw err;
    }
    queue.push(...childrenOf(d, bytes));
  }
  return seen;
}

export const contentCommands: Command[] = [ingestCommand, activeCommand, lsCommand, pathCommand, rmCommand, pruneCommand];
