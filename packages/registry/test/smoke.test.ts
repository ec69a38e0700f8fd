import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRegistry } from "../src/index.ts";
import { pushImage, startRegistry, type Running } from "./helpers.ts";

describe("smoke", () => {
  let r: Running;
  beforeAll(async () => {
    r = await startRegistry();
  });
  afterAll(async () => r.close());

  it("pushes and pulls an image", async () => {
    const img = await pushImage(r.url, "a/b", "v1");
    const res = await fetch(`${r.url}/v2/a/b/manifests/v1`);
    expect(res.status).toBe(200);
    expect(res.headers.get("docker-content-digest")).toBe(img.digest);
    expect(Buffer.from(await res.arrayBuffer()).equals(img.manifest)).toBe(true);
  });

  it("reports url, host and port of a listening server", () => {
    expect(r.server.url).toBe(`http://${r.server.host}`);
    expect(r.server.host).toBe(`127.0.0.1:${r.server.port}`);
  });

  it("answers unknown paths with a spec error", async () => {
    const res = await fetch(`${r.url}/nothing`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { errors: Array<{ code: string }> }).errors[0]?.code).toBe("NAME_UNKNOWN");
  });
});

describe("handler mounted in a caller's server", () => {
  it("serves the API and builds the token realm from the Host header", async () => {
    const registry = createRegistry({ auth: { users: { u: "p" }, scheme: "bearer" } });
    const server = createServer(registry.handler);
    await new Promise<void>((res) => server.listen(0, "127.0.0.1", () => res()));
    const { port } = server.address() as AddressInfo;
    try {
      const res = await fetch(`http://127.0.0.1:${port}/v2/`);
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toContain(`realm="http://127.0.0.1:${port}/token"`);
    } finally {
      await new Promise<void>((res) => server.close(() => res()));
      await registry.close();
    }
  });
});
