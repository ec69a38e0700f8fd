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

describe.each<[string, RegistryOptions["auth"], boolean]>([
  ["anonymous", undefined, false],
  ["Basic", { users }, false],
  ["Bearer", { users, scheme: "bearer", token: { expiresInSec: 60 } }, false],
  ["Bearer-oauth2", { users, scheme: "bearer", token: { expiresInSec: 60 } }, true],
])("ferry client against the ferry registry (%s)", (label, auth, passwordGrant) => {
  let r: Running;
  beforeAll(async () => {
    // For the OAuth2 case the GET token route is closed, so only a POST grant can succeed.
    const faults = passwordGrant ? [{ method: "GET", path: "^/token", status: 405 }] : [];
    r = await startRegistry(auth === undefined ? { faults } : { auth, faults });
  });
  afterAll(async () => r.close());

  it("pushes an index from an OCI layout and pulls it back with identical digests", async () => {
    const credentials = auth === undefined ? {} : { [r.server.host]: { username: "ferry", password: "s3cret" } };
    const resolver = createRegistryResolver({ authorizer: createAuthorizer({ credentials, passwordGrant }) });
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
    if (label.startsWith("Bearer")) expect(r.registry.authStats!.tokensIssued).toBeGreaterThan(0);
  });
});
