/**
 * Cross-check: ferry's validator against the official OCI JSON schemas (fixtures/, image-spec
 * 1.1.0~rc2). For every sample both verdicts are computed; they must agree, except for the
 * listed divergences, where ferry deliberately differs and the test pins both verdicts.
 */
import { readFileSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import Ajv04 from "ajv-draft-04";
import addFormats from "ajv-formats";
import { describe, expect, it } from "vitest";
import { digestOf } from "../../src/digest.ts";
import { MediaTypes } from "../../src/media-types.ts";
import { parseImageConfig, parseManifest } from "../../src/validate-manifest.ts";
import {
  typedArtifact,
  typedConfig,
  typedDockerList,
  typedDockerManifest,
  typedIndex,
  typedManifest,
} from "./typed-samples.ts";

// ---- schema loading ----

type SchemaName = "manifest" | "index" | "config";
const SCHEMA_FILES: Record<SchemaName, string> = {
  manifest: "image-manifest-schema.json",
  index: "image-index-schema.json",
  config: "config-schema.json",
};
const BASE = "https://schemas.ferry.invalid/oci/";
const dir = fileURLToPath(new URL("./fixtures/", import.meta.url));

/** Drop nested `id`s: they rebase relative `$ref`s onto URLs that do not name these files. */
function stripIds(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(stripIds);
  if (node === null || typeof node !== "object") return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) {
    // A property *named* id (under "properties") is data, not a keyword; none exist in these files.
    if (k === "id" && typeof v === "string") continue;
    out[k] = stripIds(v);
  }
  return out;
}

// ajv-draft-04 and ajv-formats are CommonJS; under NodeNext the default import is the module.
type Ctor = new (opts: object) => import("ajv").default;
const AjvClass = ((Ajv04 as unknown as { default?: Ctor }).default ?? Ajv04) as unknown as Ctor;
const formats = ((addFormats as unknown as { default?: unknown }).default ?? addFormats) as (ajv: object) => void;
const ajv = new AjvClass({ allErrors: true, strict: false });
formats(ajv);
for (const file of readdirSync(dir).filter((f) => f.endsWith(".json"))) {
  const schema = stripIds(JSON.parse(readFileSync(dir + file, "utf8"))) as Record<string, unknown>;
  // Ajv registers the draft-04 meta-schema under its http:// URL; the files say https://.
  const meta = schema.$schema === undefined ? {} : { $schema: "http://json-schema.org/draft-04/schema#" };
  ajv.addSchema({ ...schema, ...meta, id: BASE + file });
}

function schemaAccepts(name: SchemaName, doc: unknown): boolean {
  const validate = ajv.getSchema(BASE + SCHEMA_FILES[name]);
  if (!validate) throw new Error(`schema ${name} not loaded`);
  return validate(doc) as boolean;
}

function ferryAccepts(name: SchemaName, doc: unknown): boolean {
  const bytes = JSON.stringify(doc);
  try {
    if (name === "config") {
      parseImageConfig(bytes);
      return true;
    }
    // Read as an untyped document: ferry must reach the same kind the schema was chosen for.
    return parseManifest(bytes).kind === name;
  } catch (err) {
    if ((err as { code?: string }).code !== "InvalidManifest") throw err;
    return false;
  }
}

// ---- samples ----

type J = Record<string, any>;
const D = (s: string): string => digestOf(s);
const clone = <T>(v: T): T => structuredClone(v) as T;

const m = (): J => clone(typedManifest) as unknown as J;
const ix = (): J => clone(typedIndex) as unknown as J;
const cfg = (): J => clone(typedConfig) as unknown as J;
function edit<T extends J>(doc: T, fn: (d: T) => void): T {
  fn(doc);
  return doc;
}

interface Sample {
  name: string;
  schema: SchemaName;
  doc: unknown;
  /** Both validators accept (true) or reject (false). */
  valid?: boolean;
  /** ferry deliberately differs: the verdicts of each, and why. */
  divergence?: { schema: boolean; ferry: boolean; why: string };
}

const samples: Sample[] = [
  // image manifests: accepted by both
  { name: "typed OCI manifest", schema: "manifest", doc: typedManifest, valid: true },
  { name: "typed artifact manifest (artifactType, subject, data)", schema: "manifest", doc: typedArtifact, valid: true },
  { name: "typed Docker manifest", schema: "manifest", doc: typedDockerManifest, valid: true },
  { name: "manifest without mediaType", schema: "manifest", doc: edit(m(), (d) => delete d.mediaType), valid: true },
  { name: "layer of size 0", schema: "manifest", doc: edit(m(), (d) => (d.layers[0].size = 0)), valid: true },
  { name: "sha512 layer digest", schema: "manifest", doc: edit(m(), (d) => (d.layers[0].digest = digestOf("x", "sha512"))), valid: true },
  { name: "extra unknown top-level field", schema: "manifest", doc: { ...m(), "x-extra": [1] }, valid: true },
  { name: "media type with + and . and -", schema: "manifest", doc: edit(m(), (d) => (d.layers[0].mediaType = "application/x.vendor-type+tar")), valid: true },
  // image manifests: rejected by both
  { name: "schemaVersion 1", schema: "manifest", doc: { ...m(), schemaVersion: 1 }, valid: false },
  { name: "schemaVersion 3", schema: "manifest", doc: { ...m(), schemaVersion: 3 }, valid: false },
  { name: "schemaVersion as a string", schema: "manifest", doc: { ...m(), schemaVersion: "2" }, valid: false },
  { name: "schemaVersion missing", schema: "manifest", doc: edit(m(), (d) => delete d.schemaVersion), valid: false },
  { name: "config missing", schema: "manifest", doc: edit(m(), (d) => delete d.config), valid: false },
  { name: "layers missing", schema: "manifest", doc: edit(m(), (d) => delete d.layers), valid: false },
  { name: "layers an object", schema: "manifest", doc: { ...m(), layers: {} }, valid: false },
  { name: "config a string", schema: "manifest", doc: { ...m(), config: "sha256:x" }, valid: false },
  { name: "descriptor without mediaType", schema: "manifest", doc: edit(m(), (d) => delete d.config.mediaType), valid: false },
  { name: "descriptor without digest", schema: "manifest", doc: edit(m(), (d) => delete d.layers[1].digest), valid: false },
  { name: "descriptor without size", schema: "manifest", doc: edit(m(), (d) => delete d.layers[1].size), valid: false },
  { name: "media type without a slash", schema: "manifest", doc: edit(m(), (d) => (d.layers[0].mediaType = "tarball")), valid: false },
  { name: "media type with a space", schema: "manifest", doc: edit(m(), (d) => (d.layers[0].mediaType = "application/x tar")), valid: false },
  { name: "document mediaType not a string", schema: "manifest", doc: { ...m(), mediaType: 2 }, valid: false },
  { name: "digest without algorithm", schema: "manifest", doc: edit(m(), (d) => (d.layers[0].digest = D("a").slice(7))), valid: false },
  { name: "digest with empty hex", schema: "manifest", doc: edit(m(), (d) => (d.layers[0].digest = "sha256:")), valid: false },
  { name: "digest with a slash", schema: "manifest", doc: edit(m(), (d) => (d.layers[0].digest = "sha256:../../etc")), valid: false },
  { name: "fractional size", schema: "manifest", doc: edit(m(), (d) => (d.layers[0].size = 1.5)), valid: false },
  { name: "size as a string", schema: "manifest", doc: edit(m(), (d) => (d.layers[0].size = "12")), valid: false },
  { name: "annotation value a number", schema: "manifest", doc: { ...m(), annotations: { a: 1 } }, valid: false },
  { name: "descriptor annotation value null", schema: "manifest", doc: edit(m(), (d) => (d.layers[1].annotations = { a: null })), valid: false },
  { name: "urls a string", schema: "manifest", doc: edit(m(), (d) => (d.layers[1].urls = "https://x")), valid: false },
  { name: "urls entry not a URI", schema: "manifest", doc: edit(m(), (d) => (d.layers[1].urls = ["not a uri"])), valid: false },
  { name: "a JSON array", schema: "manifest", doc: [], valid: false },
  // image manifests: deliberate divergences
  {
    name: "empty layers",
    schema: "manifest",
    doc: { ...m(), layers: [] },
    divergence: { schema: false, ferry: true, why: "rc2 schema has minItems 1; OCI 1.1 allows artifacts without layers" },
  },
  {
    name: "negative size",
    schema: "manifest",
    doc: edit(m(), (d) => (d.layers[0].size = -1)),
    divergence: { schema: true, ferry: false, why: "schema's int64 allows negatives; a size is a byte count" },
  },
  {
    name: "size above Number.MAX_SAFE_INTEGER",
    schema: "manifest",
    doc: edit(m(), (d) => (d.layers[0].size = 2 ** 60)),
    divergence: { schema: true, ferry: false, why: "JavaScript cannot count such sizes exactly" },
  },
  {
    name: "uppercase hex digest",
    schema: "manifest",
    doc: edit(m(), (d) => (d.layers[0].digest = `sha256:${D("a").slice(7).toUpperCase()}`)),
    divergence: { schema: true, ferry: false, why: "registered algorithms require lowercase hex; ferry verifies what it can hash" },
  },
  {
    name: "short sha256 hex",
    schema: "manifest",
    doc: edit(m(), (d) => (d.layers[0].digest = "sha256:abc")),
    divergence: { schema: true, ferry: false, why: "sha256 needs 64 hex characters (spec prose, not in the schema)" },
  },
  {
    name: "unregistered digest algorithm",
    schema: "manifest",
    doc: edit(m(), (d) => (d.layers[0].digest = "md5:d41d8cd98f00b204e9800998ecf8427e")),
    divergence: { schema: true, ferry: false, why: "ferry accepts only digests it can verify (sha256, sha512)" },
  },
  {
    name: "unknown document mediaType",
    schema: "manifest",
    doc: { ...m(), mediaType: "application/vnd.example.thing+json" },
    divergence: { schema: true, ferry: false, why: "spec prose: a manifest's mediaType must be the manifest type" },
  },
  {
    name: "manifest that also has manifests",
    schema: "manifest",
    doc: { ...m(), manifests: [] },
    divergence: { schema: true, ferry: false, why: "ambiguous documents (CVE-2021-41190) are refused" },
  },
  {
    name: "embedded data that does not match its digest",
    schema: "manifest",
    doc: edit(m(), (d) => (d.config = { mediaType: MediaTypes.OciEmpty, digest: D("other"), size: 2, data: "e30=" })),
    divergence: { schema: true, ferry: false, why: "rc2 schema does not know data; ferry checks it is the blob" },
  },

  // image indexes: accepted by both
  { name: "typed OCI index", schema: "index", doc: typedIndex, valid: true },
  { name: "typed Docker manifest list", schema: "index", doc: typedDockerList, valid: true },
  { name: "index without mediaType", schema: "index", doc: edit(ix(), (d) => delete d.mediaType), valid: true },
  { name: "empty index", schema: "index", doc: { ...ix(), manifests: [] }, valid: true },
  { name: "entry without platform", schema: "index", doc: edit(ix(), (d) => delete d.manifests[0].platform), valid: true },
  { name: "index with artifactType and subject", schema: "index", doc: { ...ix(), artifactType: "application/x.y", subject: typedArtifact.subject }, valid: true },
  // image indexes: rejected by both
  { name: "manifests missing", schema: "index", doc: edit(ix(), (d) => delete d.manifests), valid: false },
  { name: "manifests an object", schema: "index", doc: { ...ix(), manifests: {} }, valid: false },
  { name: "index schemaVersion 1", schema: "index", doc: { ...ix(), schemaVersion: 1 }, valid: false },
  { name: "platform without os", schema: "index", doc: edit(ix(), (d) => delete d.manifests[0].platform.os), valid: false },
  { name: "platform without architecture", schema: "index", doc: edit(ix(), (d) => delete d.manifests[0].platform.architecture), valid: false },
  { name: "platform architecture a number", schema: "index", doc: edit(ix(), (d) => (d.manifests[0].platform.architecture = 64)), valid: false },
  { name: "platform variant a number", schema: "index", doc: edit(ix(), (d) => (d.manifests[1].platform.variant = 8)), valid: false },
  { name: "platform os.features a string", schema: "index", doc: edit(ix(), (d) => (d.manifests[2].platform["os.features"] = "win32k")), valid: false },
  { name: "platform os.version a number", schema: "index", doc: edit(ix(), (d) => (d.manifests[2].platform["os.version"] = 10)), valid: false },
  { name: "entry without size", schema: "index", doc: edit(ix(), (d) => delete d.manifests[1].size), valid: false },
  { name: "entry digest without algorithm", schema: "index", doc: edit(ix(), (d) => (d.manifests[1].digest = "nocolon")), valid: false },
  { name: "index annotations an array", schema: "index", doc: { ...ix(), annotations: ["a"] }, valid: false },
  // image indexes: deliberate divergences
  {
    name: "empty platform architecture",
    schema: "index",
    doc: edit(ix(), (d) => (d.manifests[0].platform.architecture = "")),
    divergence: { schema: true, ferry: false, why: "an empty architecture can match nothing; it is a broken document" },
  },
  {
    name: "platform features a string",
    schema: "index",
    doc: edit(ix(), (d) => (d.manifests[0].platform.features = "sse4")),
    divergence: { schema: true, ferry: false, why: "rc2 schema omits platform.features; the spec defines it as string[]" },
  },
  {
    name: "index that also has layers",
    schema: "index",
    doc: { ...ix(), layers: [] },
    divergence: { schema: true, ferry: false, why: "ambiguous documents (CVE-2021-41190) are refused" },
  },

  // image configs: accepted by both
  { name: "typed image config", schema: "config", doc: typedConfig, valid: true },
  { name: "minimal config", schema: "config", doc: { architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] } }, valid: true },
  { name: "Cmd, Entrypoint, Volumes, Labels null", schema: "config", doc: edit(cfg(), (d) => Object.assign(d.config, { Cmd: null, Entrypoint: null, Volumes: null, Labels: null })), valid: true },
  { name: "Docker extra fields", schema: "config", doc: { ...cfg(), container_config: { Hostname: "x" }, docker_version: "24.0" }, valid: true },
  { name: "created with an offset", schema: "config", doc: { ...cfg(), created: "2024-01-02T03:04:05+02:00" }, valid: true },
  // image configs: rejected by both
  { name: "architecture missing", schema: "config", doc: edit(cfg(), (d) => delete d.architecture), valid: false },
  { name: "os missing", schema: "config", doc: edit(cfg(), (d) => delete d.os), valid: false },
  { name: "rootfs missing", schema: "config", doc: edit(cfg(), (d) => delete d.rootfs), valid: false },
  { name: "rootfs type not layers", schema: "config", doc: { ...cfg(), rootfs: { type: "layer", diff_ids: [] } }, valid: false },
  { name: "diff_ids missing", schema: "config", doc: { ...cfg(), rootfs: { type: "layers" } }, valid: false },
  { name: "diff_ids a string", schema: "config", doc: { ...cfg(), rootfs: { type: "layers", diff_ids: D("a") } }, valid: false },
  { name: "created not a date-time", schema: "config", doc: { ...cfg(), created: "last tuesday" }, valid: false },
  { name: "created without a zone", schema: "config", doc: { ...cfg(), created: "2024-01-02T03:04:05" }, valid: false },
  { name: "history created not a date-time", schema: "config", doc: { ...cfg(), history: [{ created: "soon" }] }, valid: false },
  { name: "history empty_layer a string", schema: "config", doc: { ...cfg(), history: [{ empty_layer: "true" }] }, valid: false },
  { name: "Env a string", schema: "config", doc: edit(cfg(), (d) => (d.config.Env = "A=B")), valid: false },
  { name: "Cmd with a number", schema: "config", doc: edit(cfg(), (d) => (d.config.Cmd = ["a", 1])), valid: false },
  { name: "ExposedPorts value true", schema: "config", doc: edit(cfg(), (d) => (d.config.ExposedPorts = { "80/tcp": true })), valid: false },
  { name: "Labels value a number", schema: "config", doc: edit(cfg(), (d) => (d.config.Labels = { a: 1 })), valid: false },
  { name: "ArgsEscaped a string", schema: "config", doc: edit(cfg(), (d) => (d.config.ArgsEscaped = "no")), valid: false },
  { name: "User a number", schema: "config", doc: edit(cfg(), (d) => (d.config.User = 0)), valid: false },
  { name: "os.features a string", schema: "config", doc: { ...cfg(), "os.features": "x" }, valid: false },
  // image configs: deliberate divergences
  {
    name: "diff_id not a digest",
    schema: "config",
    doc: { ...cfg(), rootfs: { type: "layers", diff_ids: ["sha256:zz"] } },
    divergence: { schema: true, ferry: false, why: "diff_ids are digests; rc2 schema only says string" },
  },
  {
    name: "Env null (Docker writes it)",
    schema: "config",
    doc: edit(cfg(), (d) => (d.config.Env = null)),
    divergence: { schema: false, ferry: true, why: "Docker emits Env: null for images without env; refusing them helps nobody" },
  },
  {
    name: "config null",
    schema: "config",
    doc: { ...cfg(), config: null },
    divergence: { schema: false, ferry: true, why: "treated like an absent config, as Docker-produced images may carry it" },
  },
];

describe("OCI JSON schema cross-check", () => {
  it("loaded every schema", () => {
    for (const name of Object.keys(SCHEMA_FILES) as SchemaName[]) {
      expect(ajv.getSchema(BASE + SCHEMA_FILES[name])).toBeTypeOf("function");
    }
  });

  it("sample names are unique and each states an expectation", () => {
    expect(new Set(samples.map((s) => s.name)).size).toBe(samples.length);
    for (const s of samples) expect((s.valid === undefined) !== (s.divergence === undefined)).toBe(true);
  });

  it.each(samples.filter((s) => s.divergence === undefined).map((s) => [s.schema, s.name, s] as const))(
    "%s: %s — ferry agrees with the schema",
    (name, _n, s) => {
      expect(schemaAccepts(name, s.doc)).toBe(s.valid);
      expect(ferryAccepts(name, s.doc)).toBe(s.valid);
    },
  );

  it.each(samples.filter((s) => s.divergence !== undefined).map((s) => [s.schema, s.name, s] as const))(
    "%s: %s — known divergence",
    (name, _n, s) => {
      const div = s.divergence!;
      expect(schemaAccepts(name, s.doc)).toBe(div.schema);
      expect(ferryAccepts(name, s.doc)).toBe(div.ferry);
    },
  );
});
