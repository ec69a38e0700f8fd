import { describe, expect, it } from "vitest";
import type { Ingester, Writer, WriterOptions } from "../content.ts";
import { AlreadyExistsError, LockedError } from "../errors.ts";
import { openWriter } from "./open-writer.ts";

/** An ingester that answers `Locked` `lockedTimes` times, then hands out a stub writer. */
function flakyIngester(lockedTimes: number, final?: Error): Ingester & { calls: WriterOptions[] } {
  const calls: WriterOptions[] = [];
  return {
    calls,
    async writer(options) {
      calls.push(options);
      if (calls.length <= lockedTimes) throw new LockedError(`ref ${options.ref} locked`);
      if (final) throw final;
      return { ref: options.ref } as Writer;
    },
  };
}

describe("openWriter", () => {
  it("retries Locked until the writer opens", async () => {
    const ing = flakyIngester(3);
    const delays: number[] = [];
    const w = await openWriter(ing, { ref: "r", total: 5, minDelayMs: 2, maxDelayMs: 8, onLocked: (i) => delays.push(i.delayMs) });
    expect(w.ref).toBe("r");
    expect(ing.calls).toHaveLength(4);
    expect(ing.calls[3]).toMatchObject({ ref: "r", total: 5 });
    // Jittered between half and all of 2, 4, 8 ms.
    expect(delays).toHaveLength(3);
    delays.forEach((d, i) => {
      const cap = Math.min(2 * 2 ** i, 8);
      expect(d).toBeGreaterThanOrEqual(cap / 2);
      expect(d).toBeLessThanOrEqual(cap);
    });
  });

  it("throws Aborted when the signal aborts while waiting", async () => {
    const ing = flakyIngester(Number.POSITIVE_INFINITY);
    const ac = new AbortController();
    const p = openWriter(ing, { ref: "r", signal: ac.signal, minDelayMs: 5, onLocked: (i) => i.attempt === 3 && ac.abort() });
    await expect(p).rejects.toMatchObject({ code: "Aborted" });
    expect(ing.calls).toHaveLength(3);
  });

  it("does not retry other errors", async () => {
    const ing = flakyIngester(1, new AlreadyExistsError("exists"));
    await expect(openWriter(ing, { ref: "r", minDelayMs: 1 })).rejects.toMatchObject({ code: "AlreadyExists" });
    expect(ing.calls).toHaveLength(2);
  });

  it("refuses to start with an aborted signal", async () => {
    const ing = flakyIngester(0);
    await expect(openWriter(ing, { ref: "r", signal: AbortSignal.abort() })).rejects.toMatchObject({ code: "Aborted" });
    expect(ing.calls).toHaveLength(0);
  });
});
