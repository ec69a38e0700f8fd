/**
 * Credentials found the way docker finds them, end to end: a resolver created with no credential
 * option pulls from a Basic-auth registry (ferry's embedded one and an htpasswd-protected
 * docker-registry 2.8, the same assertions) using `~/.docker/config.json`
 * (`auths` with base64 `auth`), a `credHelpers` entry and a `credsStore` default, the helpers
 * being real `docker-credential-*` executables on PATH.
 */
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { makeImage, type MadeImage } from "@ferry/testkit";
import { createRegistryResolver } from "../src/index.ts";
import { describeEachServer } from "./servers.ts";

const USER = "ferry";
const PASS = "pa:ss word";

// Answers every server URL with the test user; logs what it was asked.
const HELPER = `#!/bin/sh
read -r url
echo "$url" >> "$FERRY_TEST_HELPER_LOG"
printf '{"ServerURL":"%s","Username":"${USER}","Secret":"${PASS}"}' "$url"
`;

describeEachServer(
  "credentials from ~/.docker/config.json against a Basic-auth registry",
  (ctx) => {
    let work: string;
    let home: string;
    let image: MadeImage;
    const saved = { HOME: process.env.HOME, DOCKER_CONFIG: process.env.DOCKER_CONFIG, PATH: process.env.PATH, LOG: process.env.FERRY_TEST_HELPER_LOG };

    beforeAll(async () => {
      work = await mkdtemp(join(tmpdir(), "ferry-docker-config-"));
      home = join(work, "home");
      const bin = join(work, "bin");
      await mkdir(join(home, ".docker"), { recursive: true });
      await mkdir(bin);
      await writeFile(join(bin, "docker-credential-ferrytest"), HELPER);
      await chmod(join(bin, "docker-credential-ferrytest"), 0o755);
      image = await makeImage(ctx.server.host, "dc/app:1", { layers: 1, layerSize: 4096, layoutDir: join(work, "img"), creds: { username: USER, password: PASS } });
      process.env.HOME = home;
      delete process.env.DOCKER_CONFIG;
      process.env.PATH = `${bin}:${saved.PATH ?? ""}`;
      process.env.FERRY_TEST_HELPER_LOG = join(work, "helper.log");
    }, 120_000);

    afterEach(async () => {
      await rm(join(work, "helper.log"), { force: true });
    });

    afterAll(async () => {
      for (const [k, v] of Object.entries({ HOME: saved.HOME, DOCKER_CONFIG: saved.DOCKER_CONFIG, PATH: saved.PATH, FERRY_TEST_HELPER_LOG: saved.LOG })) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      if (work) await rm(work, { recursive: true, force: true });
    });

    const writeConfig = (config: object) => writeFile(join(home, ".docker", "config.json"), JSON.stringify(config));
    const helperCalls = async () => (await readFile(join(work, "helper.log"), "utf8").catch(() => "")).split("\n").filter(Boolean);

    async function resolveWithDefaults(): Promise<string> {
      const r = createRegistryResolver({ retry: { maxAttempts: 1 } });
      try {
        return (await r.resolve(image.reference)).descriptor.digest;
      } finally {
        await r.close();
      }
    }

    it("uses auths with a base64 user:pass", async () => {
      await writeConfig({ auths: { [ctx.server.host]: { auth: Buffer.from(`${USER}:${PASS}`).toString("base64") } } });
      expect(await resolveWithDefaults()).toBe(image.digest);
      expect(await helperCalls()).toEqual([]);
    });

    it("asks the credHelpers entry for the host", async () => {
      await writeConfig({ auths: {}, credHelpers: { [ctx.server.host]: "ferrytest" } });
      expect(await resolveWithDefaults()).toBe(image.digest);
      expect(await helperCalls()).toEqual([ctx.server.host]);
    });

    it("falls back to the credsStore helper", async () => {
      await writeConfig({ credsStore: "ferrytest" });
      expect(await resolveWithDefaults()).toBe(image.digest);
      expect(await helperCalls()).toEqual([ctx.server.host]);
    });

    it("without an entry the pull is anonymous and refused", async () => {
      await writeConfig({ auths: { "other.example": { auth: Buffer.from("x:y").toString("base64") } } });
      const r = createRegistryResolver({ retry: { maxAttempts: 1 } });
      try {
        const err = (await r.resolve(image.reference).catch((e: unknown) => e)) as Error;
        expect(err).toMatchObject({ code: "Unauthorized" });
        expect(err.message).not.toContain(PASS);
      } finally {
        await r.close();
      }
    });
  },
  { tools: ["skopeo"], auth: { basic: { username: USER, password: PASS } } },
);
