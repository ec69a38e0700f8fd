/**
 * One set of client-level HTTP assertions (plain undici `fetch`) run against this registry and
 * against the real docker-registry (distribution 2.8). Where distribution 2.8 lacks a feature the
 * case is skipped for it only, named in `quirks`.
 */
import { requireTools, startDockerRegistry } from "@ferry/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorCode, randomBlob, sha256, startRegistry } from "./helpers.ts";

interface Target {
  name: string;
  run: boolean;
  start(): Promise<{ url: string; stop(): Promise<void> }>;
  /** Features distribution 2.8 lacks (true = supported). */
  monolithicPost: boolean;
  patchContentRange416: boolean;
  referrers: boolean;
  deleteByTag: boolean;
  tagsPagination: boolean;
}

const targets: Target[] = [
  {
    name: "ferry registry",
    run: true,
    async start() {
      const r = await startRegistry({ sparseIndexes: false });
      return { url: r.url, stop: () => r.close() };
    },
    monolithicPost: true,
    patchContentRange416: true,
    referrers: true,
    deleteByTag: true,
    tagsPagination: true,
  },
  {
    name: "docker-registry 2.8",
    run: requireTools("docker-registry"),
    async start() {
      const r = await startDockerRegistry({ logLevel: "error" });
      return { url: r.url, stop: () => r.stop() };
    },
    // POST ?digest= with a body answers 202; PATCH ignores Content-Range; no referrers API;
    // manifests delete by digest only; the tags list ignores n/last (added in distribution 3).
    monolithicPost: false,
    patchContentRange416: false,
    referrers: false,
    deleteByTag: false,
    tagsPagination: false,
  },
];

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";

describe.each(targets)("conformance: $name", (target) => {
  let url = "";
  let stop: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    if (!target.run) return;
    const s = await target.start();
    url = s.url;
    stop = s.stop;
  });
  afterAll(async () => stop?.());
  const test = it.skipIf(!target.run);

  async function startSession(repo: string): Promise<URL> {
    const post = await fetch(`${url}/v2/${repo}/blobs/uploads/`, { method: "POST" });
    expect(post.status).toBe(202);
    expect(post.headers.get("docker-upload-uuid")).toBeTruthy();
    expect(post.headers.get("range")).toBe("0-0");
    return new URL(post.headers.get("location")!, url);
  }

  async function pushMonolithic(repo: string, data: Buffer): Promise<string> {
    const loc = await startSession(repo);
    loc.searchParams.set("digest", sha256(data));
    const put = await fetch(loc, { method: "PUT", body: data, headers: { "Content-Type": "application/octet-stream" } });
    expect(put.status).toBe(201);
    expect(put.headers.get("docker-content-digest")).toBe(sha256(data));
    return sha256(data);
  }

  async function putManifest(repo: string, ref: string, blobs: Buffer[]): Promise<{ body: string; digest: string; status: number; code?: string }> {
    const [config, ...layers] = blobs;
    const body = JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256(config!), size: config!.length },
      layers: layers.map((l) => ({ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: sha256(l), size: l.length })),
    });
    const res = await fetch(`${url}/v2/${repo}/manifests/${ref}`, { method: "PUT", body, headers: { "Content-Type": OCI_MANIFEST } });
    const code = res.status >= 400 ? await errorCode(res) : undefined;
    if (res.status === 201) expect(res.headers.get("docker-content-digest")).toBe(sha256(body));
    return { body, digest: sha256(body), status: res.status, code };
  }

  test("probe /v2/", async () => {
    const res = await fetch(`${url}/v2/`);
    expect(res.status).toBe(200);
    expect(res.headers.get("docker-distribution-api-version")).toBe("registry/2.0");
  });

  test("monolithic blob push (POST session + PUT body) and HEAD/GET", async () => {
    const data = randomBlob(10_000);
    const digest = await pushMonolithic("conf/mono", data);
    const head = await fetch(`${url}/v2/conf/mono/blobs/${digest}`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe("10000");
    expect(head.headers.get("docker-content-digest")).toBe(digest);
    const get = await fetch(`${url}/v2/conf/mono/blobs/${digest}`);
    expect(Buffer.from(await get.arrayBuffer()).equals(data)).toBe(true);
  });

  it.skipIf(!target.run || !target.monolithicPost)("single-request monolithic POST ?digest= with a body", async () => {
    const data = randomBlob(1000);
    const res = await fetch(`${url}/v2/conf/mono/blobs/uploads/?digest=${sha256(data)}`, { method: "POST", body: data });
    expect(res.status).toBe(201);
  });

  test("chunked blob push with Content-Range, status GET, final PUT", async () => {
    const data = randomBlob(30_000);
    let loc = await startSession("conf/chunked");
    for (let start = 0; start < data.length; start += 10_000) {
      const res = await fetch(loc, {
        method: "PATCH",
        body: data.subarray(start, start + 10_000),
        headers: { "Content-Range": `${start}-${start + 9_999}`, "Content-Type": "application/octet-stream" },
      });
      expect(res.status).toBe(202);
      expect(res.headers.get("range")).toBe(`0-${start + 9_999}`);
      loc = new URL(res.headers.get("location")!, url);
    }
    const status = await fetch(loc);
    expect(status.status).toBe(204);
    expect(status.headers.get("range")).toBe("0-29999");
    loc = new URL(status.headers.get("location")!, url);
    loc.searchParams.set("digest", sha256(data));
    const put = await fetch(loc, { method: "PUT" });
    expect(put.status).toBe(201);
    const get = await fetch(`${url}/v2/conf/chunked/blobs/${sha256(data)}`);
    expect(Buffer.from(await get.arrayBuffer()).equals(data)).toBe(true);
  });

  it.skipIf(!target.run || !target.patchContentRange416)("416 on a chunk that leaves a gap", async () => {
    const loc = await startSession("conf/gap");
    const res = await fetch(loc, { method: "PATCH", body: randomBlob(10), headers: { "Content-Range": "100-109" } });
    expect(res.status).toBe(416);
  });

  test("a wrong digest on the final PUT is DIGEST_INVALID", async () => {
    const loc = await startSession("conf/wrong");
    const p = await fetch(loc, { method: "PATCH", body: randomBlob(100), headers: { "Content-Type": "application/octet-stream" } });
    const next = new URL(p.headers.get("location")!, url);
    next.searchParams.set("digest", sha256("other"));
    const put = await fetch(next, { method: "PUT" });
    expect(put.status).toBe(400);
    expect(await errorCode(put)).toBe("DIGEST_INVALID");
  });

  test("cancel an upload", async () => {
    const loc = await startSession("conf/cancel");
    const del = await fetch(loc, { method: "DELETE" });
    expect(del.status).toBe(204);
    const st = await fetch(loc);
    expect(st.status).toBe(404);
    expect(await errorCode(st)).toBe("BLOB_UPLOAD_UNKNOWN");
  });

  test("cross-repository mount: 201 when present in the source, 202 session otherwise; no leak across repos", async () => {
    const data = randomBlob(500);
    const digest = await pushMonolithic("conf/src", data);
    const before = await fetch(`${url}/v2/conf/dst/blobs/${digest}`, { method: "HEAD" });
    expect(before.status).toBe(404);
    const mount = await fetch(`${url}/v2/conf/dst/blobs/uploads/?mount=${digest}&from=conf/src`, { method: "POST" });
    expect(mount.status).toBe(201);
    expect(mount.headers.get("docker-content-digest")).toBe(digest);
    expect((await fetch(`${url}/v2/conf/dst/blobs/${digest}`, { method: "HEAD" })).status).toBe(200);
    const miss = await fetch(`${url}/v2/conf/dst2/blobs/uploads/?mount=${digest}&from=conf/nothing`, { method: "POST" });
    expect(miss.status).toBe(202);
    expect(miss.headers.get("location")).toBeTruthy();
  });

  test("manifest put/get/head/delete", async () => {
    const blobs = [randomBlob(50), randomBlob(100)];
    for (const b of blobs) await pushMonolithic("conf/man", b);
    const m = await putManifest("conf/man", "v1", blobs);
    expect(m.status).toBe(201);
    for (const ref of ["v1", m.digest]) {
      const get = await fetch(`${url}/v2/conf/man/manifests/${ref}`, { headers: { Accept: OCI_MANIFEST } });
      expect(get.status).toBe(200);
      expect(get.headers.get("content-type")).toBe(OCI_MANIFEST);
      expect(get.headers.get("docker-content-digest")).toBe(m.digest);
      expect(await get.text()).toBe(m.body);
      const head = await fetch(`${url}/v2/conf/man/manifests/${ref}`, { method: "HEAD", headers: { Accept: OCI_MANIFEST } });
      expect(head.status).toBe(200);
      expect(head.headers.get("content-length")).toBe(String(Buffer.byteLength(m.body)));
    }
    const del = await fetch(`${url}/v2/conf/man/manifests/${m.digest}`, { method: "DELETE" });
    expect(del.status).toBe(202);
    const gone = await fetch(`${url}/v2/conf/man/manifests/${m.digest}`, { headers: { Accept: OCI_MANIFEST } });
    expect(gone.status).toBe(404);
    expect(await errorCode(gone)).toBe("MANIFEST_UNKNOWN");
  });

  it.skipIf(!target.run || !target.deleteByTag)("delete a tag", async () => {
    const blobs = [randomBlob(10)];
    await pushMonolithic("conf/deltag", blobs[0]!);
    expect((await putManifest("conf/deltag", "t", blobs)).status).toBe(201);
    expect((await fetch(`${url}/v2/conf/deltag/manifests/t`, { method: "DELETE" })).status).toBe(202);
  });

  test("a manifest referencing an unknown blob is MANIFEST_BLOB_UNKNOWN", async () => {
    const m = await putManifest("conf/missing", "v1", [randomBlob(10)]);
    expect(m.status).toBe(400);
    expect(m.code).toBe("MANIFEST_BLOB_UNKNOWN");
  });

  test("tags list", async () => {
    const blobs = [randomBlob(20)];
    await pushMonolithic("conf/tags", blobs[0]!);
    for (const t of ["a", "b", "c"]) expect((await putManifest("conf/tags", t, blobs)).status).toBe(201);
    const all = await fetch(`${url}/v2/conf/tags/tags/list`);
    // distribution 2.8 lists in directory order, so compare as a set.
    const body = (await all.json()) as { name: string; tags: string[] };
    expect(body.name).toBe("conf/tags");
    expect([...body.tags].sort()).toEqual(["a", "b", "c"]);
    const unknown = await fetch(`${url}/v2/conf/nothing-here/tags/list`);
    expect(unknown.status).toBe(404);
    expect(await errorCode(unknown)).toBe("NAME_UNKNOWN");
  });

  it.skipIf(!target.run || !target.tagsPagination)("tags list with n/last pagination and Link", async () => {
    const blobs = [randomBlob(20)];
    await pushMonolithic("conf/tagpage", blobs[0]!);
    for (const t of ["a", "b", "c"]) expect((await putManifest("conf/tagpage", t, blobs)).status).toBe(201);
    const p1 = await fetch(`${url}/v2/conf/tagpage/tags/list?n=2`);
    expect(((await p1.json()) as { tags: string[] }).tags).toEqual(["a", "b"]);
    expect(p1.headers.get("link")).toMatch(/<\/v2\/conf\/tagpage\/tags\/list\?.*last=b.*>; rel="next"/);
    const p2 = await fetch(`${url}/v2/conf/tagpage/tags/list?n=2&last=b`);
    expect(((await p2.json()) as { tags: string[] }).tags).toEqual(["c"]);
  });

  test("catalog with pagination", async () => {
    const all = (await (await fetch(`${url}/v2/_catalog`)).json()) as { repositories: string[] };
    expect(all.repositories.length).toBeGreaterThan(2);
    expect(all.repositories).toContain("conf/mono");
    const p1 = await fetch(`${url}/v2/_catalog?n=1`);
    expect(((await p1.json()) as { repositories: string[] }).repositories).toEqual([all.repositories[0]]);
    expect(p1.headers.get("link")).toContain('rel="next"');
  });

  test("range GET: 206 with Content-Range; 416 past the end", async () => {
    const data = randomBlob(4096);
    const digest = await pushMonolithic("conf/range", data);
    const part = await fetch(`${url}/v2/conf/range/blobs/${digest}`, { headers: { Range: "bytes=100-199" } });
    expect(part.status).toBe(206);
    expect(part.headers.get("content-range")).toBe("bytes 100-199/4096");
    expect(Buffer.from(await part.arrayBuffer()).equals(data.subarray(100, 200))).toBe(true);
    const past = await fetch(`${url}/v2/conf/range/blobs/${digest}`, { headers: { Range: "bytes=4096-" } });
    expect(past.status).toBe(416);
    // distribution sends a Content-Length it never fulfils: never read that body.
    await past.body?.cancel().catch(() => undefined);
  });

  test("unknown blob is BLOB_UNKNOWN", async () => {
    const res = await fetch(`${url}/v2/conf/mono/blobs/${sha256("none")}`);
    expect(res.status).toBe(404);
    expect(await errorCode(res)).toBe("BLOB_UNKNOWN");
  });

  it.skipIf(!target.run || !target.referrers)("referrers API", async () => {
    const res = await fetch(`${url}/v2/conf/mono/referrers/${sha256("subject")}`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { manifests: unknown[] }).manifests).toEqual([]);
  });
});
