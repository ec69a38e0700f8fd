import { describe, expect, it, vi } from "vitest";
import type { Descriptor } from "../descriptor.ts";
import { digestOf } from "../digest.ts";
import { MediaTypes } from "../media-types.ts";
import type { StatusEvent } from "./events.ts";
import { StatusReporter } from "./reporter.ts";

const layer = (n: string, size: number): Descriptor => ({ mediaType: MediaTypes.OciLayerGzip, digest: digestOf(n), size });

describe("StatusReporter", () => {
  it("keeps totals: existing, resumed and moved bytes, rate and ETA", () => {
    let t = 1_000;
    const r = new StatusReporter({ throttleMs: 0, now: () => t });
    const a = r.blob(layer("a", 1000), "download");
    const b = r.blob(layer("b", 500), "download");
    const c = r.blob(layer("c", 300), "download");
    a.waiting();
    b.waiting();
    c.waiting();
    b.exists();
    a.offsetFromDestination();
    a.resumed(400);
    expect(r.totals()).toMatchObject({ bytesTotal: 1800, bytesDone: 900, bytesTransferred: 0, blobsDone: 1, blobsExisting: 1, blobsTotal: 3 });
    t += 1000;
    a.moved(700, 300);
    a.stored(700);
    const tot = r.totals();
    expect(tot).toMatchObject({ bytesDone: 1200, bytesTransferred: 300 });
    expect(tot.rate).toBe(300);
    expect(tot.etaMs).toBe(2000); // 600 bytes left at 300 B/s
    c.skipped("platform");
    expect(r.totals()).toMatchObject({ bytesTotal: 1500, blobsTotal: 2 });
    a.committing();
    a.done();
    expect(r.totals()).toMatchObject({ bytesDone: 1500, blobsDone: 2, etaMs: 0 });
  });

  it("completes the stream and resolves done with the totals", async () => {
    const r = new StatusReporter({ throttleMs: 0 });
    const seen: StatusEvent[] = [];
    let completed = false;
    r.status$.subscribe({ next: (e) => seen.push(e), complete: () => (completed = true) });
    const d = layer("x", 10);
    const b = r.blob(d, "upload");
    b.waiting();
    b.moved(10, 10);
    b.done();
    r.complete({ root: d, name: "x" });
    const res = await r.done;
    expect(completed).toBe(true);
    expect(res.totals).toMatchObject({ bytesDone: 10, bytesTransferred: 10, blobsDone: 1 });
    expect(seen.map((e) => e.type)).toContain("uploading");
    expect(seen[seen.length - 1]?.type).toBe("progress");
  });

  it("errors the stream, rejects done, and keeps a throwing listener from breaking it", async () => {
    const r = new StatusReporter({ throttleMs: 0 });
    r.events.on("waiting", () => {
      throw new Error("listener bug");
    });
    const uncaught: unknown[] = [];
    const onUncaught = (e: unknown) => uncaught.push(e);
    process.on("uncaughtException", onUncaught);
    try {
      const b = r.blob(layer("y", 5), "download");
      b.waiting();
      let error: unknown;
      r.status$.subscribe({ error: (e) => (error = e) });
      r.fail(new Error("plain"), { ref: b.ref, digest: b.desc.digest });
      await expect(r.done).rejects.toMatchObject({ code: "Internal", message: "plain" });
      expect(error).toMatchObject({ code: "Internal" });
      await new Promise((res) => setTimeout(res, 5));
      expect(uncaught).toHaveLength(1);
    } finally {
      process.off("uncaughtException", onUncaught);
    }
  });

  it("a throwing listener does not keep the event from the listeners after it; off() finds a listener again", async () => {
    const r = new StatusReporter({ throttleMs: 0 });
    const seen: string[] = [];
    r.events.on("waiting", () => {
      throw new Error("listener bug");
    });
    const second = (e: { ref: string }) => void seen.push(`on:${e.ref}`);
    r.events.on("waiting", second);
    r.events.once("waiting", (e) => void seen.push(`once:${e.ref}`));
    r.events.addListener("waiting", (e) => void seen.push(`add:${e.ref}`));
    const uncaught: unknown[] = [];
    const onUncaught = (e: unknown) => uncaught.push(e);
    process.on("uncaughtException", onUncaught);
    try {
      r.blob(layer("p", 5), "download").waiting();
      r.events.off("waiting", second);
      r.blob(layer("q", 5), "download").waiting();
      await new Promise((res) => setTimeout(res, 5));
      const [p, q] = [layer("p", 5), layer("q", 5)].map((d) => `layer-${d.digest}`);
      expect(seen).toEqual([`on:${p}`, `once:${p}`, `add:${p}`, `add:${q}`]);
      expect(uncaught).toHaveLength(2);
    } finally {
      process.off("uncaughtException", onUncaught);
    }
    r.complete({ root: layer("p", 5), name: "x" });
  });

  it("heartbeats while bytes stall, so the rate decays to 0 and the ETA becomes unknown", () => {
    vi.useFakeTimers();
    try {
      const r = new StatusReporter({ throttleMs: 100 });
      const progress: Array<{ rate: number; etaMs: number | undefined }> = [];
      r.events.on("progress", (p) => progress.push({ rate: p.rate, etaMs: p.etaMs }));
      const b = r.blob(layer("slow", 10_000), "download");
      b.waiting();
      for (let i = 1; i <= 5; i++) {
        vi.advanceTimersByTime(200);
        b.moved(i * 1000, 1000);
      }
      vi.advanceTimersByTime(200);
      const moving = progress[progress.length - 1]!;
      expect(moving.rate).toBeGreaterThan(0);
      expect(moving.etaMs).toBeGreaterThan(0);
      // Nothing moves for 10 s: only the heartbeat speaks.
      const before = progress.length;
      vi.advanceTimersByTime(10_000);
      expect(progress.length).toBeGreaterThan(before);
      expect(progress[progress.length - 1]).toEqual({ rate: 0, etaMs: undefined });
      r.complete({ root: b.desc, name: "slow" });
      const after = progress.length;
      vi.advanceTimersByTime(10_000);
      expect(progress.length).toBe(after);
    } finally {
      vi.useRealTimers();
    }
  });
});
