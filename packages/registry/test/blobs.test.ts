import { request } from "node:http";
import { FailedPreconditionError } from "@ferry/core";
import { MemoryStore } from "@ferry/store-memory";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorCode, pushBlob, randomBlob, sha256, startRegistry, type Running } from "./helpers.ts";

describe("blobs and uploads", () => {
  let r: Running;
  const ingests = async () => (await r.registry.store.listStatuses({ refPrefix: "upload-" })).map((s) => s.ref);

  beforeAll(async () => {
    r = await startRegistry();
  });
  afterAll(async () => r.close());

  it("answers the /v2/ probe", async () => {
    const res = await fetch(`${r.url}/v2/`);
    expect(res.status).toBe(200);
    expect(res.headers.get("docker-distribution-api-version")).toBe("registry/2.0");
  });

  it("takes a monolithic POST ?digest= with a body", async () => {
    const data = randomBlob(5000);
    const digest = sha256(data);
    const res = await fetch(`${r.url}/v2/mono/blobs/uploads/?digest=${digest}`, { method: "POST", body: data });
    expect(res.status).toBe(201);
    expect(res.headers.get("location")).toBe(`/v2/mono/blobs/${digest}`);
    expect(res.headers.get("docker-content-digest")).toBe(digest);
    const get = await fetch(`${r.url}/v2/mono/blobs/${digest}`);
    expect(get.status).toBe(200);
    expect(Buffer.from(await get.arrayBuffer()).equals(data)).toBe(true);
    expect(await ingests()).toEqual([]);
  });

  it("refuses a monolithic upload whose digest is wrong and keeps nothing", async () => {
    const data = randomBlob(100);
    const wrong = sha256("something else");
    const res = await fetch(`${r.url}/v2/mono/blobs/uploads/?digest=${wrong}`, { method: "POST", body: data });
    expect(res.status).toBe(400);
    expect(await errorCode(res)).toBe("DIGEST_INVALID");
    expect((await fetch(`${r.url}/v2/mono/blobs/${wrong}`, { method: "HEAD" })).status).toBe(404);
    expect(await ingests()).toEqual([]);
  });

  it("links an already-stored blob by monolithic POST only when the body proves it", async () => {
    const data = randomBlob(4000);
    const digest = await pushBlob(r.url, "holder/repo", data);
    // Knowing the digest is not enough: an empty (or wrong) body links nothing.
    for (const body of [Buffer.alloc(0), randomBlob(4000)]) {
      const res = await fetch(`${r.url}/v2/prober/blobs/uploads/?digest=${digest}`, { method: "POST", body });
      expect(res.status).toBe(400);
      expect(await errorCode(res)).toBe("DIGEST_INVALID");
      expect((await fetch(`${r.url}/v2/prober/blobs/${digest}`, { method: "HEAD" })).status).toBe(404);
    }
    const ok = await fetch(`${r.url}/v2/prober/blobs/uploads/?digest=${digest}`, { method: "POST", body: data });
    expect(ok.status).toBe(201);
    expect(ok.headers.get("docker-content-digest")).toBe(digest);
    expect((await fetch(`${r.url}/v2/prober/blobs/${digest}`, { method: "HEAD" })).status).toBe(200);
    expect(await ingests()).toEqual([]);
  });

  it("runs a chunked session: POST, PATCH with Content-Range, status, 416 on a gap, PUT with a final chunk", async () => {
    const data = randomBlob(3000);
    const digest = sha256(data);
    const post = await fetch(`${r.url}/v2/chunked/blobs/uploads/`, { method: "POST" });
    expect(post.status).toBe(202);
    expect(post.headers.get("range")).toBe("0-0");
    const uuid = post.headers.get("docker-upload-uuid")!;
    expect(uuid).toMatch(/^[0-9a-f-]{36}$/);
    const loc = new URL(post.headers.get("location")!, r.url);
    expect(loc.pathname).toBe(`/v2/chunked/blobs/uploads/${uuid}`);
    expect(await ingests()).toEqual([`upload-${uuid}`]);

    const p1 = await fetch(loc, { method: "PATCH", body: data.subarray(0, 1000), headers: { "Content-Range": "0-999" } });
    expect(p1.status).toBe(202);
    expect(p1.headers.get("range")).toBe("0-999");
    expect(p1.headers.get("docker-upload-uuid")).toBe(uuid);

    const st = await fetch(loc);
    expect(st.status).toBe(204);
    expect(st.headers.get("range")).toBe("0-999");

    const gap = await fetch(loc, { method: "PATCH", body: data.subarray(2000, 2500), headers: { "Content-Range": "2000-2499" } });
    expect(gap.status).toBe(416);
    expect(gap.headers.get("range")).toBe("0-999");
    expect(gap.headers.get("location")).toBe(`/v2/chunked/blobs/uploads/${uuid}`);
    expect(await errorCode(gap)).toBe("RANGE_INVALID");

    const overlap = await fetch(loc, { method: "PATCH", body: data.subarray(500, 1500), headers: { "Content-Range": "500-1499" } });
    expect(overlap.status).toBe(416);

    // A streamed PATCH (no Content-Range) appends.
    const p2 = await fetch(loc, { method: "PATCH", body: data.subarray(1000, 2000) });
    expect(p2.status).toBe(202);
    expect(p2.headers.get("range")).toBe("0-1999");

    const fin = new URL(loc);
    fin.searchParams.set("digest", digest);
    const put = await fetch(fin, { method: "PUT", body: data.subarray(2000), headers: { "Content-Range": "2000-2999" } });
    expect(put.status).toBe(201);
    expect(put.headers.get("docker-content-digest")).toBe(digest);
    expect(put.headers.get("location")).toBe(`/v2/chunked/blobs/${digest}`);

    const get = await fetch(`${r.url}/v2/chunked/blobs/${digest}`);
    expect(Buffer.from(await get.arrayBuffer()).equals(data)).toBe(true);
    expect(await ingests()).toEqual([]);
    expect(await r.registry.storage.getUpload(uuid)).toBeUndefined();
    expect((await fetch(loc)).status).toBe(404);
  });

  it("requires a digest on the final PUT and rejects a wrong one, dropping the session", async () => {
    const post = await fetch(`${r.url}/v2/chunked/blobs/uploads/`, { method: "POST" });
    const loc = new URL(post.headers.get("location")!, r.url);
    await fetch(loc, { method: "PATCH", body: "hello" });
    const noDigest = await fetch(loc, { method: "PUT" });
    expect(noDigest.status).toBe(400);
    expect(await errorCode(noDigest)).toBe("DIGEST_INVALID");
    const bad = new URL(loc);
    bad.searchParams.set("digest", sha256("not hello"));
    const put = await fetch(bad, { method: "PUT" });
    expect(put.status).toBe(400);
    expect(await errorCode(put)).toBe("DIGEST_INVALID");
    const st = await fetch(loc);
    expect(st.status).toBe(404);
    expect(await errorCode(st)).toBe("BLOB_UPLOAD_UNKNOWN");
    expect(await ingests()).toEqual([]);
    expect(await r.registry.storage.getUpload(post.headers.get("docker-upload-uuid")!)).toBeUndefined();
  });

  it("refuses a chunk whose Content-Length contradicts its Content-Range", async () => {
    const post = await fetch(`${r.url}/v2/chunked/blobs/uploads/`, { method: "POST" });
    const loc = new URL(post.headers.get("location")!, r.url);
    const res = await fetch(loc, { method: "PATCH", body: randomBlob(10), headers: { "Content-Range": "0-19" } });
    expect(res.status).toBe(400);
    expect(await errorCode(res)).toBe("SIZE_INVALID");
    expect((await fetch(loc)).headers.get("range")).toBe("0-0");
    await fetch(loc, { method: "DELETE" });
  });

  it("keeps what arrived when a client disconnects mid-PATCH and goes on from the status", async () => {
    const data = randomBlob(100_000);
    const post = await fetch(`${r.url}/v2/cut/blobs/uploads/`, { method: "POST" });
    const loc = new URL(post.headers.get("location")!, r.url);
    await new Promise<void>((resolve) => {
      const req = request(loc, { method: "PATCH", headers: { "Content-Length": String(data.length) } });
      req.on("error", () => resolve());
      req.write(data.subarray(0, 40_000), () => setTimeout(() => req.destroy(), 50));
      req.on("close", () => resolve());
    });
    let offset = -1;
    for (let i = 0; i < 50 && offset !== 40_000; i++) {
      const st = await fetch(loc);
      offset = Number(/^0-(\d+)$/.exec(st.headers.get("range") ?? "")?.[1] ?? -2) + 1;
      if (offset !== 40_000) await new Promise((res) => setTimeout(res, 20));
    }
    expect(offset).toBe(40_000);
    const rest = await fetch(loc, { method: "PATCH", body: data.subarray(offset), headers: { "Content-Range": `${offset}-${data.length - 1}` } });
    expect(rest.status).toBe(202);
    const fin = new URL(loc);
    fin.searchParams.set("digest", sha256(data));
    expect((await fetch(fin, { method: "PUT" })).status).toBe(201);
  });

  it("cancels a session with DELETE and leaves no ingest", async () => {
    const post = await fetch(`${r.url}/v2/chunked/blobs/uploads/`, { method: "POST" });
    const loc = new URL(post.headers.get("location")!, r.url);
    await fetch(loc, { method: "PATCH", body: randomBlob(100) });
    const del = await fetch(loc, { method: "DELETE" });
    expect(del.status).toBe(204);
    expect(await ingests()).toEqual([]);
    const again = await fetch(loc, { method: "PATCH", body: "x" });
    expect(again.status).toBe(404);
    expect(await errorCode(again)).toBe("BLOB_UPLOAD_UNKNOWN");
  });

  it("does not let another repository use a session", async () => {
    const post = await fetch(`${r.url}/v2/owner/blobs/uploads/`, { method: "POST" });
    const uuid = post.headers.get("docker-upload-uuid")!;
    const res = await fetch(`${r.url}/v2/thief/blobs/uploads/${uuid}`);
    expect(res.status).toBe(404);
    expect(await errorCode(res)).toBe("BLOB_UPLOAD_UNKNOWN");
    await fetch(new URL(post.headers.get("location")!, r.url), { method: "DELETE" });
  });

  it("serves ranges: 206 with Content-Range, suffix and open ranges, 416 past the end", async () => {
    const data = randomBlob(1000);
    const digest = await pushBlob(r.url, "ranges", data);
    const url = `${r.url}/v2/ranges/blobs/${digest}`;
    const head = await fetch(url, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe("1000");
    expect(head.headers.get("docker-content-digest")).toBe(digest);
    expect(head.headers.get("accept-ranges")).toBe("bytes");

    const mid = await fetch(url, { headers: { Range: "bytes=10-19" } });
    expect(mid.status).toBe(206);
    expect(mid.headers.get("content-range")).toBe("bytes 10-19/1000");
    expect(Buffer.from(await mid.arrayBuffer()).equals(data.subarray(10, 20))).toBe(true);

    const open = await fetch(url, { headers: { Range: "bytes=990-" } });
    expect(open.status).toBe(206);
    expect(Buffer.from(await open.arrayBuffer()).equals(data.subarray(990))).toBe(true);

    const suffix = await fetch(url, { headers: { Range: "bytes=-5" } });
    expect(suffix.status).toBe(206);
    expect(suffix.headers.get("content-range")).toBe("bytes 995-999/1000");

    const past = await fetch(url, { headers: { Range: "bytes=1000-" } });
    expect(past.status).toBe(416);
    expect(past.headers.get("content-range")).toBe("bytes */1000");
    expect(await errorCode(past)).toBe("RANGE_INVALID");
    // Range is for GET: a HEAD describes the whole blob whatever it asks.
    const headPast = await fetch(url, { method: "HEAD", headers: { Range: "bytes=1000-" } });
    expect(headPast.status).toBe(200);
    expect(headPast.headers.get("content-length")).toBe("1000");
  });

  it("answers BLOB_UNKNOWN, DIGEST_INVALID, NAME_INVALID", async () => {
    const unknown = await fetch(`${r.url}/v2/ranges/blobs/${sha256("nope")}`);
    expect(unknown.status).toBe(404);
    expect(await errorCode(unknown)).toBe("BLOB_UNKNOWN");
    const invalid = await fetch(`${r.url}/v2/ranges/blobs/sha256:xyz`);
    expect(invalid.status).toBe(400);
    expect(await errorCode(invalid)).toBe("DIGEST_INVALID");
    const name = await fetch(`${r.url}/v2/Upper/Case/blobs/${sha256("nope")}`);
    expect(name.status).toBe(400);
    expect(await errorCode(name)).toBe("NAME_INVALID");
    const method = await fetch(`${r.url}/v2/ranges/blobs/${sha256("nope")}`, { method: "PUT", body: "x" });
    expect(method.status).toBe(405);
    expect(await errorCode(method)).toBe("UNSUPPORTED");
  });

  it("keeps blobs private to the repositories they were pushed or mounted into", async () => {
    const data = randomBlob(300);
    const digest = await pushBlob(r.url, "src/repo", data);
    expect((await fetch(`${r.url}/v2/other/repo/blobs/${digest}`, { method: "HEAD" })).status).toBe(404);

    const mount = await fetch(`${r.url}/v2/other/repo/blobs/uploads/?mount=${digest}&from=src/repo`, { method: "POST" });
    expect(mount.status).toBe(201);
    expect(mount.headers.get("docker-content-digest")).toBe(digest);
    expect(mount.headers.get("location")).toBe(`/v2/other/repo/blobs/${digest}`);
    expect((await fetch(`${r.url}/v2/other/repo/blobs/${digest}`, { method: "HEAD" })).status).toBe(200);

    // Absent from the source: a fresh session instead.
    const miss = await fetch(`${r.url}/v2/third/blobs/uploads/?mount=${digest}&from=nowhere`, { method: "POST" });
    expect(miss.status).toBe(202);
    expect(miss.headers.get("docker-upload-uuid")).toBeTruthy();
    expect(miss.headers.get("location")).toMatch(/^\/v2\/third\/blobs\/uploads\//);
    await fetch(new URL(miss.headers.get("location")!, r.url), { method: "DELETE" });
  });

  it("deletes a blob link", async () => {
    const digest = await pushBlob(r.url, "del", randomBlob(10));
    const del = await fetch(`${r.url}/v2/del/blobs/${digest}`, { method: "DELETE" });
    expect(del.status).toBe(202);
    expect((await fetch(`${r.url}/v2/del/blobs/${digest}`, { method: "HEAD" })).status).toBe(404);
    const again = await fetch(`${r.url}/v2/del/blobs/${digest}`, { method: "DELETE" });
    expect(again.status).toBe(404);
    expect(await errorCode(again)).toBe("BLOB_UNKNOWN");
  });

  it("purges abandoned sessions", async () => {
    const post = await fetch(`${r.url}/v2/abandon/blobs/uploads/`, { method: "POST" });
    const uuid = post.headers.get("docker-upload-uuid")!;
    await fetch(new URL(post.headers.get("location")!, r.url), { method: "PATCH", body: "partial" });
    expect(await r.registry.purgeUploads(60_000)).toEqual([]);
    await new Promise((res) => setTimeout(res, 20));
    expect(await r.registry.purgeUploads(1)).toEqual([uuid]);
    expect(await ingests()).toEqual([]);
    expect(await r.registry.storage.getUpload(uuid)).toBeUndefined();
  });
});

describe("upload status against a writer closed under it", () => {
  it("answers from the ingest when the open writer can no longer flush", async () => {
    const store = new MemoryStore();
    let closedUnderUs = false;
    const open = store.writer.bind(store);
    store.writer = async (o) => {
      const w = await open(o);
      // What a writer closed by a concurrent request (idle timer, finishing PUT) answers.
      w.flush = async () => {
        if (closedUnderUs) throw new FailedPreconditionError(`writer for ${o.ref} is closed`);
      };
      return w;
    };
    const s = await startRegistry({ store });
    try {
      const post = await fetch(`${s.url}/v2/race/blobs/uploads/`, { method: "POST" });
      const loc = new URL(post.headers.get("location")!, s.url);
      expect((await fetch(loc, { method: "PATCH", body: "abc" })).status).toBe(202);
      closedUnderUs = true;
      const st = await fetch(loc);
      expect(st.status).toBe(204);
      expect(st.headers.get("range")).toBe("0-2");
    } finally {
      await s.close();
    }
  });
});
