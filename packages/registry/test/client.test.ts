/**
 * ferry's own client (@ferry/fetcher resolver + core push/pull) against this registry: a
 * two-platform image built by testkit is pushed from an OCI layout and pulled back, anonymously
 * and through both auth schemes (the fetcher's challenge/token flow).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pull, push } from "@ferry/core";
import { createAuthorizer, createRegistryResolver } from "@ferry/fetcher";
import { openFsStore } from "@ferry/store-fs";
import { buildImage, type BuiltLayout } from "@ferry/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RegistryOptions } from "../src/index.ts";
import { startRegistry, type Running } from "./helpers.ts";

let work: string;
let layout: BuiltLayout;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "ferry-reg-client-"));
  layout = await buildImage({ dir: join(work, "src"), layers: 2, layerSize: 128 * 1024, platforms: ["linux/amd64", "linux/arm64"] });
});
afterAll(async () => rm(work, { recursive: true, force: true }));

const users = { ferry: "s3cret" };

describe.each<[string, RegistryOptions["auth"]]>([
  ["anonymous", undefined],
  ["Basic", { users }],
  ["Bearer", { users, scheme: "bearer", token: { expiresInSec: 60 } }],
])("ferry client against the ferry registry (%s)", (label, auth) => {
  let r: Running;
  beforeAll(async () => {
    r = await startRegistry(auth === undefined ? {} : { auth });
  });
  afterAll(async () => r.close());

  it("pushes an index from an OCI layout and pulls it back with identical digests", async () => {
    const credentials = auth === undefined ? {} : { [r.server.host]: { username: "ferry", password: "s3cret" } };
    const resolver = createRegistryResolver({ authorizer: createAuthorizer({ credentials }) });
    const src = await openFsStore(layout.dir);
    const ref = `${r.server.host}/client/${label.toLowerCase()}:v1`;
    const pushed = await push(ref, { store: src, name: layout.name, resolver }).done;
    expect(pushed.root.digest).toBe(layout.root.digest);

    const dst = await openFsStore(join(work, `dst-${label}`));
    const pulled = await pull(ref, { resolver, store: dst, platform: "all", name: "back" }).done;
    expect(pulled.root.digest).toBe(layout.root.digest);
    for (const d of [...layout.manifests, ...layout.configs, ...layout.layers]) {
      const info = await dst.info(d.digest);
      expect(info.size).toBe(d.size);
    }
    if (label === "Bearer") expect(r.registry.authStats!.tokensIssued).toBeGreaterThan(0);
  });
});
