import { afterAll, beforeAll, describe, expect, it } from "vitest";
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
});
