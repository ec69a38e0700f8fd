/**
 * The tag-schema referrers index under concurrent writers: a fake registry holds one tag; two
 * writers read it before either writes (the race the spec names), and both entries must survive.
 */
import { describe, expect, it } from "vitest";
import type { Descriptor } from "../descriptor.ts";
import { digestOf, type Digest } from "../digest.ts";
import { MediaTypes } from "../media-types.ts";
import { StatusReporter } from "../status/reporter.ts";
import type { PushSource, Pusher } from "../transport.ts";
import { TAG_ROUNDS, referrersTag, writeReferrersTags } from "./referrers-tag.ts";

const subject = digestOf("subject manifest");
const ref = (name: string): Descriptor => ({ mediaType: MediaTypes.OciManifest, digest: digestOf(name), size: 10, artifactType: "application/example" });

async function bytesOf(source: PushSource): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of source.open(0) as AsyncIterable<Uint8Array>) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

/** One repository's tag → index, and hooks that hold a writer between its steps. */
class FakeRegistry {
  tagged: Descriptor[] = [];
  writes = 0;
  /** Runs before a read / a write completes; tests park writers there. */
  beforeRead: (who: string) => Promise<void> = async () => {};
  beforeWrite: (who: string) => Promise<void> = async () => {};

  source(who: string): { referrers(name: string, digest: Digest): Promise<Descriptor[]> } {
    return {
      referrers: async (_name, digest) => {
        expect(digest).toBe(subject);
        await this.beforeRead(who);
        return [...this.tagged];
      },
    };
  }

  pusher(who: string): Pusher {
    return {
      exists: async () => false,
      push: async (_desc, source, options) => {
        expect(options?.tag).toBe(referrersTag(subject));
        const index = JSON.parse((await bytesOf(source)).toString()) as { manifests: Descriptor[] };
        await this.beforeWrite(who);
        this.tagged = index.manifests;
        this.writes++;
        return "pushed";
      },
    };
  }
}

function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}

function write(reg: FakeRegistry, who: string, copied: Descriptor[]): Promise<void> {
  return writeReferrersTags({
    destination: reg.source(who),
    repository: "repo",
    pusher: reg.pusher(who),
    bySubject: new Map([[subject, copied]]),
    reporter: new StatusReporter({ throttleMs: 0 }),
    signal: new AbortController().signal,
    settleMs: () => 0,
  });
}

describe("writeReferrersTags", () => {
  it("two writers that read before either writes: the overwritten one writes the merge again", async () => {
    const reg = new FakeRegistry();
    const a = ref("sbom");
    const b = ref("signature");
    // Both first reads see the empty tag; A writes first, B overwrites it with [b] before A
    // reads the tag again (what the pause before that read is for).
    const bothRead = gate();
    const bWrote = gate();
    const readsBy = new Map<string, number>();
    let firstReads = 0;
    reg.beforeRead = async (who) => {
      const n = (readsBy.get(who) ?? 0) + 1;
      readsBy.set(who, n);
      if (n === 1) {
        if (++firstReads === 2) bothRead.open();
        await bothRead.wait;
      } else if (who === "A" && n === 2) await bWrote.wait;
    };
    reg.beforeWrite = async (who) => {
      if (who === "B" && reg.writes === 0) await new Promise((r) => setTimeout(r, 5)); // A's first write lands first
    };
    const pusherB = reg.pusher("B");
    const pa = write(reg, "A", [a]);
    const pb = writeReferrersTags({
      destination: reg.source("B"),
      repository: "repo",
      pusher: { ...pusherB, push: async (d, src, opts) => (await pusherB.push(d, src, opts).finally(() => bWrote.open())) },
      bySubject: new Map([[subject, [b]]]),
      reporter: new StatusReporter({ throttleMs: 0 }),
      signal: new AbortController().signal,
      settleMs: () => 0,
    });
    await Promise.all([pa, pb]);
    expect(reg.tagged.map((d) => d.digest).sort()).toEqual([a.digest, b.digest].sort());
    expect(reg.tagged.find((d) => d.digest === a.digest)).toMatchObject({ artifactType: "application/example" });
    expect(reg.writes).toBe(3);
  });

  it("writes nothing when the destination lists the referrers already", async () => {
    const reg = new FakeRegistry();
    const a = ref("sbom");
    reg.tagged = [a];
    await write(reg, "A", [a]);
    expect(reg.writes).toBe(0);
  });

  it(`gives up with Unavailable after ${TAG_ROUNDS} overwritten rounds`, async () => {
    const reg = new FakeRegistry();
    const other = ref("someone else's");
    // Another writer replaces the tag right after each of ours.
    const pusher = reg.pusher("A");
    const stubborn: Pusher = {
      ...pusher,
      push: async (desc, source, options) => {
        const out = await pusher.push(desc, source, options);
        reg.tagged = [other];
        return out;
      },
    };
    const err = await writeReferrersTags({
      destination: reg.source("A"),
      repository: "repo",
      pusher: stubborn,
      bySubject: new Map([[subject, [ref("sbom")]]]),
      reporter: new StatusReporter({ throttleMs: 0 }),
      signal: new AbortController().signal,
      settleMs: () => 0,
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "Unavailable" });
    expect(reg.writes).toBe(TAG_ROUNDS);
  });
});
