import { existsSync, readFileSync } from "node:fs";
import { request } from "node:http";
import { createServer, type AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { hasCode } from "@ferry/core";
import { describeWithRegistry, hasTool, requireTools, runTool, startDockerRegistry } from "../src/index.ts";

function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("tools", () => {
  it("finds executables on PATH and reports missing ones", () => {
    expect(hasTool("sh")).toBe(true);
    expect(hasTool("definitely-not-a-tool-ferry")).toBe(false);
  });

  it("requireTools skips without CI and fails under CI=true", () => {
    const before = process.env.CI;
    try {
      delete process.env.CI;
      expect(requireTools("sh")).toBe(true);
      expect(requireTools("definitely-not-a-tool-ferry")).toBe(false);
      process.env.CI = "true";
      expect(() => requireTools("definitely-not-a-tool-ferry")).toThrow(/definitely-not-a-tool-ferry/);
    } finally {
      if (before === undefined) delete process.env.CI;
      else process.env.CI = before;
    }
  });

  it("runTool returns stdout and throws a typed error carrying stderr", async () => {
    await expect(runTool("sh", ["-c", "echo hi"])).resolves.toMatchObject({ stdout: "hi\n" });
    const err = await runTool("sh", ["-c", "echo boom >&2; exit 3"]).catch((e: unknown) => e);
    expect(hasCode(err, "Internal")).toBe(true);
    expect(err).toMatchObject({ exitCode: 3, stderr: "boom\n" });
    const missing = await runTool("definitely-not-a-tool-ferry", []).catch((e: unknown) => e);
    expect(hasCode(missing, "Unavailable")).toBe(true);
  });
});

describe.runIf(requireTools("docker-registry", "htpasswd"))("startDockerRegistry", () => {
  it("starts, serves /v2/, logs requests, and cleans up on stop", async () => {
    const reg = await startDockerRegistry();
    try {
      expect(reg.host).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(reg.url).toBe(`http://${reg.host}`);
      const res = await get(`${reg.url}/v2/`);
      expect(res.status).toBe(200);
      expect(res.headers["docker-distribution-api-version"]).toBe("registry/2.0");
      expect(readFileSync(`${reg.dataDir}/config.yml`, "utf8")).toContain(`addr: ${reg.host}`);
    } finally {
      await reg.stop();
    }
    expect(existsSync(reg.dataDir)).toBe(false);
    await expect(get(`${reg.url}/v2/`)).rejects.toThrow();
    await reg.stop(); // idempotent
  });

  it("ignores REGISTRY_* variables of the parent environment", async () => {
    process.env.REGISTRY_HTTP_ADDR = "127.0.0.1:1";
    try {
      const reg = await startDockerRegistry();
      await reg.stop();
    } finally {
      delete process.env.REGISTRY_HTTP_ADDR;
    }
  });

  it("fails with Unavailable when the fixed port is taken", async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", () => r()));
    const port = (blocker.address() as AddressInfo).port;
    try {
      await expect(startDockerRegistry({ port })).rejects.toMatchObject({ code: "Unavailable" });
    } finally {
      blocker.close();
    }
  });

  it("enforces htpasswd auth", async () => {
    const reg = await startDockerRegistry({ auth: { htpasswd: { username: "alice", password: "s3cret pw" } } });
    try {
      const anon = await get(`${reg.url}/v2/`);
      expect(anon.status).toBe(401);
      expect(String(anon.headers["www-authenticate"])).toMatch(/^Basic realm=/);
      const basic = (u: string, p: string): string => `Basic ${Buffer.from(`${u}:${p}`).toString("base64")}`;
      expect((await get(`${reg.url}/v2/`, { authorization: basic("alice", "s3cret pw") })).status).toBe(200);
      expect((await get(`${reg.url}/v2/`, { authorization: basic("alice", "wrong") })).status).toBe(401);
    } finally {
      await reg.stop();
    }
  });
});

let seen: string | undefined;
describeWithRegistry("describeWithRegistry", (ctx) => {
  it("gives each test the running registry", async () => {
    seen = ctx.registry.url;
    expect((await get(`${ctx.registry.url}/v2/`)).status).toBe(200);
  });
  it("shares one registry across the block", () => {
    expect(ctx.registry.url).toBe(seen);
  });
});
