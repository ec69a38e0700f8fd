/**
 * The ceiling of the small-blob case: plain HTTP GETs of every layer of the image in a layout,
 * `CONCURRENCY` at a time over keep-alive connections, bodies discarded. No hashing, no store:
 * what the registry can serve to any client on this machine.
 *
 *   get-blobs BASE_URL REPO LAYOUT_DIR CONCURRENCY
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
// undici is a dependency of the fetcher package, not of the repository root.
import { Agent, request } from "../packages/fetcher/node_modules/undici/index.js";
import { InternalError } from "../packages/core/src/errors.ts";

interface Desc {
  digest: string;
  mediaType: string;
}

const [base, repo, layout, conc] = process.argv.slice(2) as [string, string, string, string];
const blob = async (digest: string): Promise<{ manifests?: Desc[]; layers?: Desc[] }> =>
  JSON.parse(await readFile(join(layout, "blobs", ...digest.split(":")), "utf8")) as { manifests?: Desc[]; layers?: Desc[] };
const top = JSON.parse(await readFile(join(layout, "index.json"), "utf8")) as { manifests: Desc[] };
const layers: Desc[] = [];
const walk = async (d: Desc): Promise<void> => {
  const doc = await blob(d.digest);
  for (const m of doc.manifests ?? []) await walk(m);
  layers.push(...(doc.layers ?? []));
};
for (const m of top.manifests) await walk(m);

const agent = new Agent({ connections: Number(conc) });
let next = 0;
const worker = async (): Promise<void> => {
  while (next < layers.length) {
    const d = layers[next++]!;
    const res = await request(`${base}/v2/${repo}/blobs/${d.digest}`, { dispatcher: agent });
    if (res.statusCode !== 200) throw new InternalError(`GET ${d.digest}: ${res.statusCode}`);
    for await (const _ of res.body) void _;
  }
};
await Promise.all(Array.from({ length: Number(conc) }, worker));
await agent.close();
process.stdout.write(`${JSON.stringify({ blobs: layers.length })}\n`);
