import { Readable } from "node:stream";
import { parseDigest } from "@ferry/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorCode, pushBlob, pushImage, sha256, startRegistry, type Running } from "./helpers.ts";

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";

describe("manifests", () => {
  let r: Running;
  beforeAll(async () => {
    r = await startRegistry();
  });
  afterAll(async () => r.close());

  it("PUT by tag, GET/HEAD by tag and digest with Content-Type and Docker-Content-Digest", async () => {
    const img = await pushImage(r.url, "m/one", "latest");
    for (const ref of ["latest", img.digest]) {
      const get = await fetch(`${r.url}/v2/m/one/manifests/${ref}`, { headers: { Accept: OCI_MANIFEST } });
      expect(get.status).toBe(200);
      expect(get.headers.get("content-type")).toBe(OCI_MANIFEST);
      expect(get.headers.get("docker-content-digest")).toBe(img.digest);
      expect(Buffer.from(await get.arrayBuffer()).equals(img.manifest)).toBe(true);
      const head = await fetch(`${r.url}/v2/m/one/manifests/${ref}`, { method: "HEAD" });
      expect(head.status).toBe(200);
      expect(head.headers.get("content-length")).toBe(String(img.manifest.length));
      expect(head.headers.get("docker-content-digest")).toBe(img.digest);
    }
  });

  it("answers Location and Docker-Content-Digest on PUT", async () => {
    const config = Buffer.from("{}");
    await pushBlob(r.url, "m/loc", config);
    const body = JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: "application/vnd.oci.empty.v1+json", digest: sha256(config), size: 2 },
      layers: [],
    });
    const res = await fetch(`${r.url}/v2/m/loc/manifests/v1`, { method: "PUT", body, headers: { "Content-Type": OCI_MANIFEST } });
    expect(res.status).toBe(201);
    expect(res.headers.get("docker-content-digest")).toBe(sha256(body));
    expect(res.headers.get("location")).toBe(`/v2/m/loc/manifests/${sha256(body)}`);
  });

  it("negotiates on Accept for tags and always serves a digest", async () => {
    const img = await pushImage(r.url, "m/neg", "t");
    const docker = "application/vnd.docker.distribution.manifest.v2+json";
    const byTag = await fetch(`${r.url}/v2/m/neg/manifests/t`, { headers: { Accept: docker } });
    expect(byTag.status).toBe(404);
    expect(await errorCode(byTag)).toBe("MANIFEST_UNKNOWN");
    const byDigest = await fetch(`${r.url}/v2/m/neg/manifests/${img.digest}`, { headers: { Accept: docker } });
    expect(byDigest.status).toBe(200);
    const wildcard = await fetch(`${r.url}/v2/m/neg/manifests/t`, { headers: { Accept: "*/*" } });
    expect(wildcard.status).toBe(200);
  });

  it("rejects manifests that reference blobs missing from the repository", async () => {
    const other = await pushImage(r.url, "m/has", "x");
    const res = await fetch(`${r.url}/v2/m/lacks/manifests/x`, {
      method: "PUT",
      body: other.manifest,
      headers: { "Content-Type": OCI_MANIFEST },
    });
    expect(res.status).toBe(400);
    expect(await errorCode(res)).toBe("MANIFEST_BLOB_UNKNOWN");
  });

  it("exempts non-distributable layers with urls from the blob check, and only those", async () => {
    const config = Buffer.from("{}");
    await pushBlob(r.url, "m/foreign", config);
    const foreign = (urls?: string[]) =>
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256(config), size: 2 },
        layers: [
          {
            mediaType: "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
            digest: sha256("never pushed"),
            size: 12,
            ...(urls === undefined ? {} : { urls }),
          },
        ],
      });
    const withUrls = await fetch(`${r.url}/v2/m/foreign/manifests/a`, { method: "PUT", body: foreign(["https://example.com/l"]), headers: { "Content-Type": OCI_MANIFEST } });
    expect(withUrls.status).toBe(201);
    const without = await fetch(`${r.url}/v2/m/foreign/manifests/b`, { method: "PUT", body: foreign(), headers: { "Content-Type": OCI_MANIFEST } });
    expect(without.status).toBe(400);
    expect(await errorCode(without)).toBe("MANIFEST_BLOB_UNKNOWN");
    // Validated before storing: the refused document is nowhere, not even in the content store.
    expect((await fetch(`${r.url}/v2/m/foreign/manifests/b`)).status).toBe(404);
    await expect(r.registry.store.info(parseDigest(sha256(foreign())))).rejects.toMatchObject({ code: "NotFound" });
  });

  it("rejects invalid documents, a Content-Type that contradicts mediaType, and a wrong digest", async () => {
    const bad = await fetch(`${r.url}/v2/m/inv/manifests/x`, { method: "PUT", body: "{not json", headers: { "Content-Type": OCI_MANIFEST } });
    expect(bad.status).toBe(400);
    expect(await errorCode(bad)).toBe("MANIFEST_INVALID");

    const img = await pushImage(r.url, "m/inv", "ok");
    const mismatch = await fetch(`${r.url}/v2/m/inv/manifests/y`, {
      method: "PUT",
      body: img.manifest,
      headers: { "Content-Type": OCI_INDEX },
    });
    expect(mismatch.status).toBe(400);
    expect(await errorCode(mismatch)).toBe("MANIFEST_INVALID");

    const wrong = await fetch(`${r.url}/v2/m/inv/manifests/${sha256("other")}`, {
      method: "PUT",
      body: img.manifest,
      headers: { "Content-Type": OCI_MANIFEST },
    });
    expect(wrong.status).toBe(400);
    expect(await errorCode(wrong)).toBe("DIGEST_INVALID");
  });

  it("caps manifests at 4 MiB", async () => {
    const huge = JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, pad: "x".repeat(4 * 1024 * 1024) });
    const res = await fetch(`${r.url}/v2/m/big/manifests/x`, { method: "PUT", body: huge, headers: { "Content-Type": OCI_MANIFEST } });
    expect(res.status).toBe(413);
    expect(await errorCode(res)).toBe("SIZE_INVALID");
    // Without a Content-Length the cap is enforced while reading.
    const chunked = await fetch(`${r.url}/v2/m/big/manifests/x`, {
      method: "PUT",
      body: Readable.toWeb(Readable.from([Buffer.from(huge)])) as ReadableStream,
      duplex: "half",
      headers: { "Content-Type": OCI_MANIFEST },
    } as RequestInit);
    expect(chunked.status).toBe(413);
    expect(await errorCode(chunked)).toBe("SIZE_INVALID");
  });

  it("answers MANIFEST_UNKNOWN for unknown tags and digests", async () => {
    const t = await fetch(`${r.url}/v2/m/one/manifests/nope`);
    expect(t.status).toBe(404);
    expect(await errorCode(t)).toBe("MANIFEST_UNKNOWN");
    const d = await fetch(`${r.url}/v2/m/one/manifests/${sha256("nope")}`);
    expect(d.status).toBe(404);
    expect(await errorCode(d)).toBe("MANIFEST_UNKNOWN");
  });

  it("deletes by digest (tags pointing at it go too) and by tag", async () => {
    const img = await pushImage(r.url, "m/del", "a");
    const tagB = await fetch(`${r.url}/v2/m/del/manifests/b`, { method: "PUT", body: img.manifest, headers: { "Content-Type": OCI_MANIFEST } });
    expect(tagB.status).toBe(201);
    const delTag = await fetch(`${r.url}/v2/m/del/manifests/b`, { method: "DELETE" });
    expect(delTag.status).toBe(202);
    expect((await fetch(`${r.url}/v2/m/del/manifests/b`)).status).toBe(404);
    expect((await fetch(`${r.url}/v2/m/del/manifests/a`)).status).toBe(200);

    const del = await fetch(`${r.url}/v2/m/del/manifests/${img.digest}`, { method: "DELETE" });
    expect(del.status).toBe(202);
    expect((await fetch(`${r.url}/v2/m/del/manifests/${img.digest}`)).status).toBe(404);
    expect((await fetch(`${r.url}/v2/m/del/manifests/a`)).status).toBe(404);
    const again = await fetch(`${r.url}/v2/m/del/manifests/${img.digest}`, { method: "DELETE" });
    expect(await errorCode(again)).toBe("MANIFEST_UNKNOWN");
  });

  it("accepts an index with absent children by default, and refuses it when strict", async () => {
    const child = { mediaType: OCI_MANIFEST, digest: sha256("absent child"), size: 10, platform: { os: "linux", architecture: "amd64" } };
    const index = JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [child] });
    const res = await fetch(`${r.url}/v2/m/idx/manifests/i`, { method: "PUT", body: index, headers: { "Content-Type": OCI_INDEX } });
    expect(res.status).toBe(201);
    const get = await fetch(`${r.url}/v2/m/idx/manifests/i`, { headers: { Accept: OCI_INDEX } });
    expect(get.headers.get("content-type")).toBe(OCI_INDEX);

    const strict = await startRegistry({ sparseIndexes: false });
    try {
      const refused = await fetch(`${strict.url}/v2/m/idx/manifests/i`, { method: "PUT", body: index, headers: { "Content-Type": OCI_INDEX } });
      expect(refused.status).toBe(400);
      expect(await errorCode(refused)).toBe("MANIFEST_BLOB_UNKNOWN");
      const img = await pushImage(strict.url, "m/idx", undefined);
      const full = JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: [{ mediaType: OCI_MANIFEST, digest: img.digest, size: img.manifest.length }],
      });
      const ok = await fetch(`${strict.url}/v2/m/idx/manifests/i`, { method: "PUT", body: full, headers: { "Content-Type": OCI_INDEX } });
      expect(ok.status).toBe(201);
    } finally {
      await strict.close();
    }
  });
});

describe("tags, catalog, referrers", () => {
  let r: Running;
  beforeAll(async () => {
    r = await startRegistry();
  });
  afterAll(async () => r.close());

  it("lists tags with n/last pagination and a Link header", async () => {
    const img = await pushImage(r.url, "t/repo", "c");
    for (const t of ["a", "b", "d"]) {
      await fetch(`${r.url}/v2/t/repo/manifests/${t}`, { method: "PUT", body: img.manifest, headers: { "Content-Type": OCI_MANIFEST } });
    }
    const all = await fetch(`${r.url}/v2/t/repo/tags/list`);
    expect(await all.json()).toEqual({ name: "t/repo", tags: ["a", "b", "c", "d"] });
    const p1 = await fetch(`${r.url}/v2/t/repo/tags/list?n=2`);
    expect(await p1.json()).toEqual({ name: "t/repo", tags: ["a", "b"] });
    expect(p1.headers.get("link")).toBe('</v2/t/repo/tags/list?n=2&last=b>; rel="next"');
    const p2 = await fetch(`${r.url}/v2/t/repo/tags/list?n=2&last=b`);
    expect(await p2.json()).toEqual({ name: "t/repo", tags: ["c", "d"] });
    expect(p2.headers.get("link")).toBeNull();
    const unknown = await fetch(`${r.url}/v2/t/none/tags/list`);
    expect(unknown.status).toBe(404);
    expect(await errorCode(unknown)).toBe("NAME_UNKNOWN");
    const invalid = await fetch(`${r.url}/v2/T_/tags/list`);
    expect(await errorCode(invalid)).toBe("NAME_INVALID");
  });

  it("lists the catalog with pagination", async () => {
    await pushBlob(r.url, "z/one", Buffer.from("1"));
    await pushBlob(r.url, "z/two", Buffer.from("2"));
    const all = (await (await fetch(`${r.url}/v2/_catalog`)).json()) as { repositories: string[] };
    expect(all.repositories).toEqual(expect.arrayContaining(["t/repo", "z/one", "z/two"]));
    expect([...all.repositories].sort()).toEqual(all.repositories);
    const p1 = await fetch(`${r.url}/v2/_catalog?n=1`);
    expect(((await p1.json()) as { repositories: string[] }).repositories).toEqual([all.repositories[0]]);
    expect(p1.headers.get("link")).toContain('rel="next"');
    const p2 = await fetch(`${r.url}/v2/_catalog?n=5&last=z/one`);
    expect(((await p2.json()) as { repositories: string[] }).repositories).toEqual(["z/two"]);
  });

  it("indexes referrers by subject, filters by artifactType and forgets deleted ones", async () => {
    const subject = await pushImage(r.url, "ref/repo", "base");
    const subjectDesc = { mediaType: OCI_MANIFEST, digest: subject.digest, size: subject.manifest.length };
    const empty = Buffer.from("{}");
    await pushBlob(r.url, "ref/repo", empty);
    const put = async (artifactType: string, note: string) => {
      const body = JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        artifactType,
        config: { mediaType: "application/vnd.oci.empty.v1+json", digest: sha256(empty), size: 2 },
        layers: [],
        subject: subjectDesc,
        annotations: { note },
      });
      const res = await fetch(`${r.url}/v2/ref/repo/manifests/${sha256(body)}`, { method: "PUT", body, headers: { "Content-Type": OCI_MANIFEST } });
      expect(res.status).toBe(201);
      expect(res.headers.get("oci-subject")).toBe(subject.digest);
      return sha256(body);
    };
    const sig = await put("application/vnd.example.sig", "s");
    const sbom = await put("application/vnd.example.sbom", "b");

    const all = await fetch(`${r.url}/v2/ref/repo/referrers/${subject.digest}`);
    expect(all.status).toBe(200);
    expect(all.headers.get("content-type")).toBe(OCI_INDEX);
    const idx = (await all.json()) as { schemaVersion: number; mediaType: string; manifests: Array<{ digest: string; artifactType: string; annotations: Record<string, string> }> };
    expect(idx.schemaVersion).toBe(2);
    expect(idx.mediaType).toBe(OCI_INDEX);
    expect(idx.manifests.map((m) => m.digest).sort()).toEqual([sig, sbom].sort());
    expect(idx.manifests.find((m) => m.digest === sig)?.artifactType).toBe("application/vnd.example.sig");
    expect(idx.manifests.find((m) => m.digest === sbom)?.annotations).toEqual({ note: "b" });

    const filtered = await fetch(`${r.url}/v2/ref/repo/referrers/${subject.digest}?artifactType=application/vnd.example.sbom`);
    expect(filtered.headers.get("oci-filters-applied")).toBe("artifactType");
    expect(((await filtered.json()) as { manifests: Array<{ digest: string }> }).manifests.map((m) => m.digest)).toEqual([sbom]);

    await fetch(`${r.url}/v2/ref/repo/manifests/${sig}`, { method: "DELETE" });
    const after = (await (await fetch(`${r.url}/v2/ref/repo/referrers/${subject.digest}`)).json()) as { manifests: Array<{ digest: string }> };
    expect(after.manifests.map((m) => m.digest)).toEqual([sbom]);

    const none = (await (await fetch(`${r.url}/v2/ref/repo/referrers/${sha256("x")}`)).json()) as { manifests: unknown[] };
    expect(none.manifests).toEqual([]);
    const bad = await fetch(`${r.url}/v2/ref/repo/referrers/sha256:zz`);
    expect(await errorCode(bad)).toBe("DIGEST_INVALID");
  });
});
