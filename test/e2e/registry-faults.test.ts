/** Transport trouble seen through the status stream: retries and dropped connections. */
import { afterAll, beforeAll, expect, it } from "vitest";
import { createRegistryResolver, describeWithRegistry, type Descriptor, makeImage, openFsStore, pull, startFaultProxy, push } from "./deps.ts";
import { collect, present, tempDirs } from "./fixtures.ts";

const tempDir = tempDirs("ferry-e2e-faults-");
async function store() {
  return openFsStore(await tempDir());
}

describeWithRegistry(
  "transfers through a faulty network",
  (ctx) => {
    let proxy: Awaited<ReturnType<typeof startFaultProxy>>;
    let img: { reference: string; root: Descriptor; configs: Descriptor[]; layers: Descriptor[] };
    let blobs: Descriptor[];
    const resolver = createRegistryResolver({ retry: { minDelayMs: 1, maxDelayMs: 5 } });

    beforeAll(async () => {
      img = await makeImage(ctx.registry.host, "faulty:1", { layers: 2, layerSize: 512 * 1024 });
      blobs = [img.root, ...img.configs, ...img.layers];
      proxy = await startFaultProxy({ target: ctx.registry.url });
    });
    afterAll(async () => {
      await proxy?.stop();
    });
    const viaProxy = () => img.reference.replace(ctx.registry.host, proxy.host);

    it("reports a 503 answer as a retry of that blob and still succeeds", async () => {
      const layer = img.layers[1]!;
      proxy.setRules([{ method: "GET", path: `/blobs/${layer.digest}`, count: 1, status: 503, retryAfter: 0 }]);
      const s = await store();
      const op = pull(viaProxy(), { resolver, store: s });
      const events = collect(op);
      const r = await op.done;
      const retries = (await events).filter((e) => e.type === "retrying");
      expect(retries.length).toBeGreaterThanOrEqual(1);
      expect(retries[0]).toMatchObject({ ref: `layer-${layer.digest}`, digest: layer.digest });
      expect((await present(s, blobs)).size).toBe(blobs.length);
      expect(r.totals.bytesTransferred).toBe(blobs.reduce((n, d) => n + d.size, 0));
    });

    it("a connection dropped mid-blob is reopened at the offset: nothing is fetched twice", async () => {
      const layer = img.layers[0]!;
      proxy.setRules([{ method: "GET", path: `/blobs/${layer.digest}`, count: 1, dropAfterBytes: 200 * 1024 }]);
      const s = await store();
      const op = pull(viaProxy(), { resolver, store: s });
      const events = collect(op);
      const r = await op.done;
      expect((await events).some((e) => e.type === "retrying" && e.digest === layer.digest)).toBe(true);
      expect((await present(s, blobs)).size).toBe(blobs.length);
      expect(r.totals.bytesTransferred).toBe(blobs.reduce((n, d) => n + d.size, 0));
    });

    it("a corrupted download fails with DigestMismatch; the next run starts that blob over and succeeds", async () => {
      const layer = img.layers[1]!;
      proxy.setRules([{ method: "GET", path: `/blobs/${layer.digest}`, count: 1, corruptByteAt: 1000 }]);
      const s = await store();
      const op = pull(viaProxy(), { resolver, store: s });
      const events = collect(op);
      await expect(op.done).rejects.toMatchObject({ code: "DigestMismatch" });
      expect((await events).find((e) => e.type === "error")).toMatchObject({ ref: `layer-${layer.digest}`, code: "DigestMismatch" });
      expect((await present(s, [layer])).size).toBe(0);

      const r = await pull(viaProxy(), { resolver, store: s }).done;
      expect((await present(s, blobs)).size).toBe(blobs.length);
      expect(r.totals.bytesDone).toBe(r.totals.bytesTotal);
    });

    it("a failed upload fails the push with a typed error naming the blob", async () => {
      const s = await store();
      await pull(img.reference, { resolver, store: s, name: "faulty" }).done;
      // Every upload of this layer is refused with a non-retryable status.
      proxy.setRules([{ method: ["POST", "PUT", "PATCH"], path: /\/uploads\//, status: 403, body: "json" }]);
      const op = push(`${proxy.host}/refused:1`, { store: s, name: "faulty", resolver, concurrency: 1 });
      const events = collect(op);
      const err = await op.done.catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "Denied" });
      const e = (await events).find((x) => x.type === "error");
      expect(e).toMatchObject({ type: "error", code: "Denied" });
      expect(e && "ref" in e && e.ref).toMatch(/^(layer|config)-sha256:/);
      proxy.setRules([]);
    });
  },
  { tools: ["skopeo"] },
);
