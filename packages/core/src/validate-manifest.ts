/**
 * Validation of untrusted manifest, index, descriptor and image-config documents.
 *
 * Every failure is an {@link InvalidManifestError} whose message starts with the path of the bad
 * field (`layers[2].digest: invalid digest "sha256:zz": ...`) and whose `details.field` holds that
 * path (`$` for the document as a whole). Parsed documents are returned as they were decoded, so
 * fields ferry does not know survive a round trip.
 */
import { createHash } from "node:crypto";
import type { Descriptor, Platform } from "./descriptor.ts";
import { parseDigest } from "./digest.ts";
import { FerryError, InvalidManifestError } from "./errors.ts";
import {
  MaxConfigBytes,
  MaxManifestBytes,
  type ImageConfig,
  type ImageIndex,
  type ImageManifest,
  type ParsedManifest,
} from "./manifest.ts";
import { MediaTypes, isIndexMediaType, isManifestMediaType } from "./media-types.ts";

export interface ParseManifestOptions {
  /**
   * The media type the document came with: a `Content-Type` header (parameters such as
   * `charset` are ignored) or the `mediaType` of the descriptor that pointed at it. When the
   * document has its own `mediaType` the two must be equal. Generic types (`application/json`,
   * `application/octet-stream`, `text/plain`), which static hosts serve, are ignored.
   * Default: none; the kind is then read from the document.
   */
  mediaType?: string;
  /** Largest accepted document in bytes, checked before decoding. Default {@link MaxManifestBytes} (4 MiB). */
  maxSize?: number;
}

export interface ParseImageConfigOptions {
  /** Largest accepted config in bytes, checked before decoding. Default {@link MaxConfigBytes} (8 MiB). */
  maxSize?: number;
}

export interface ValidateDescriptorOptions {
  /** Path prefix used in error messages, e.g. `layers[3]`. Default: none (paths start at the descriptor's fields). */
  field?: string;
}

/** Media types that say nothing about the document; registries and static hosts use them. */
const GENERIC_MEDIA_TYPES = new Set(["", "application/json", "application/octet-stream", "text/plain"]);

const DOCKER_SCHEMA1_MEDIA_TYPES = new Set([
  "application/vnd.docker.distribution.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v1+prettyjws",
]);

// RFC 6838 section 4.2: type "/" subtype, each a restricted name of at most 127 characters.
const MEDIA_TYPE_RE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;

// RFC 3339 date-time (`T` or space separator, optional fraction, `Z` or numeric offset).
const RFC3339_RE = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/;

const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

type Json = Record<string, unknown>;
type Doc = "manifest" | "index" | "config" | "descriptor";

/**
 * Validate and parse a manifest or index (OCI or Docker schema 2).
 *
 * Checks, in order: size cap (before decoding), UTF-8, JSON syntax, a top-level object,
 * `schemaVersion` 2, the media type (document vs {@link ParseManifestOptions.mediaType}),
 * the kind (an image manifest must not carry `manifests`, an index must not carry `config` or
 * `layers`, which closes the ambiguous-manifest hole), then every field and descriptor.
 */
export function parseManifest(bytes: Uint8Array | string, options: ParseManifestOptions = {}): ParsedManifest {
  const doc = decodeObject(bytes, options.maxSize ?? MaxManifestBytes, "manifest");

  if (!("schemaVersion" in doc)) fail("manifest", "schemaVersion", "required field is missing");
  if (doc.schemaVersion === 1) fail("manifest", "schemaVersion", "Docker schema 1 manifests are not supported");
  if (doc.schemaVersion !== 2) fail("manifest", "schemaVersion", `must be 2, got ${show(doc.schemaVersion)}`);

  const hint = hintKind(options.mediaType);
  let docMediaType: string | undefined;
  let kind: "index" | "manifest" | undefined;
  if (doc.mediaType !== undefined) {
    docMediaType = mediaTypeField(doc.mediaType, "mediaType", "manifest");
    kind = manifestKind(docMediaType);
    if (kind === undefined) {
      fail("manifest", "mediaType", `${show(docMediaType)} is not an image manifest or index media type`);
    }
    if (hint !== undefined && hint.mediaType !== docMediaType) {
      fail("manifest", "mediaType", `document says ${show(docMediaType)} but it was served as ${show(hint.mediaType)}`);
    }
  } else if (hint !== undefined) {
    // Docker schema 2 makes mediaType mandatory; a Docker-typed response without one is corrupt.
    if (hint.mediaType === MediaTypes.DockerManifest || hint.mediaType === MediaTypes.DockerManifestList) {
      fail("manifest", "mediaType", `required in a Docker document (served as ${show(hint.mediaType)})`);
    }
    kind = hint.kind;
  }

  const hasManifests = "manifests" in doc;
  const hasConfig = "config" in doc;
  const hasLayers = "layers" in doc;
  if (kind === undefined) {
    if (hasManifests && (hasConfig || hasLayers)) {
      fail("manifest", "$", "ambiguous document: it has both manifests and config/layers");
    }
    if (hasManifests) kind = "index";
    else if (hasConfig || hasLayers) kind = "manifest";
    else fail("manifest", "$", "neither an image manifest (config, layers) nor an index (manifests)");
  }
  // A document must not be readable as both kinds (CVE-2021-41190): reject the foreign fields.
  if (kind === "manifest" && hasManifests) fail("manifest", "manifests", "not allowed in an image manifest");
  if (kind === "index" && hasConfig) fail("index", "config", "not allowed in an index");
  if (kind === "index" && hasLayers) fail("index", "layers", "not allowed in an index");

  const mediaType =
    docMediaType ?? hint?.mediaType ?? (kind === "index" ? MediaTypes.OciIndex : MediaTypes.OciManifest);

  if (kind === "index") {
    if (!("manifests" in doc)) fail("index", "manifests", "required field is missing");
    const manifests = arrayField(doc.manifests, "manifests", "index");
    manifests.forEach((m, i) => checkDescriptor(m, `manifests[${i}]`, "index"));
    commonFields(doc, "index");
    return { kind: "index", index: doc as unknown as ImageIndex, mediaType };
  }

  if (!hasConfig) fail("manifest", "config", "required field is missing");
  checkDescriptor(doc.config, "config", "manifest");
  if (!hasLayers) fail("manifest", "layers", "required field is missing");
  const layers = arrayField(doc.layers, "layers", "manifest");
  layers.forEach((l, i) => checkDescriptor(l, `layers[${i}]`, "manifest"));
  commonFields(doc, "manifest");
  return { kind: "manifest", manifest: doc as unknown as ImageManifest, mediaType };
}

/** Validate one descriptor (e.g. from a caller or an OCI layout's index) and return it typed. */
export function validateDescriptor(value: unknown, options: ValidateDescriptorOptions = {}): Descriptor {
  checkDescriptor(value, options.field ?? "", "descriptor");
  return value as Descriptor;
}

/** Validate a platform object (`architecture` and `os` required, all members strings). */
export function validatePlatform(value: unknown, options: ValidateDescriptorOptions = {}): Platform {
  checkPlatform(value, options.field ?? "", "descriptor");
  return value as Platform;
}

/**
 * Validate and parse an image config (OCI or Docker). Unknown fields are kept. Required:
 * `architecture`, `os`, `rootfs` with `type: "layers"` and `diff_ids` that are valid digests.
 */
export function parseImageConfig(bytes: Uint8Array | string, options: ParseImageConfigOptions = {}): ImageConfig {
  const D: Doc = "config";
  const doc = decodeObject(bytes, options.maxSize ?? MaxConfigBytes, D);
  requiredString(doc, "architecture", "", D);
  requiredString(doc, "os", "", D);
  optionalString(doc, "created", "", D);
  if (typeof doc.created === "string") dateTime(doc.created, "created", D);
  optionalString(doc, "author", "", D);
  optionalString(doc, "variant", "", D);
  optionalString(doc, "os.version", "", D);
  if (doc["os.features"] !== undefined) stringArray(doc["os.features"], join("", "os.features"), D);

  if (doc.config !== undefined && doc.config !== null) {
    const c = objectField(doc.config, "config", D);
    for (const k of ["User", "WorkingDir", "StopSignal"]) optionalString(c, k, "config", D);
    for (const k of ["Env", "Entrypoint", "Cmd"]) {
      // Docker writes null for an empty list; OCI allows null for Entrypoint and Cmd.
      if (c[k] !== undefined && c[k] !== null) stringArray(c[k], `config.${k}`, D);
    }
    for (const k of ["ExposedPorts", "Volumes"]) {
      if (c[k] === undefined || c[k] === null) continue;
      const set = objectField(c[k], `config.${k}`, D);
      for (const [key, v] of Object.entries(set)) objectField(v, join(`config.${k}`, key), D);
    }
    if (c.Labels !== undefined && c.Labels !== null) stringMap(c.Labels, "config.Labels", D);
    if (c.ArgsEscaped !== undefined && typeof c.ArgsEscaped !== "boolean") {
      fail(D, "config.ArgsEscaped", `must be a boolean, got ${show(c.ArgsEscaped)}`);
    }
  }

  if (!("rootfs" in doc)) fail(D, "rootfs", "required field is missing");
  const rootfs = objectField(doc.rootfs, "rootfs", D);
  if (rootfs.type !== "layers") fail(D, "rootfs.type", `must be "layers", got ${show(rootfs.type)}`);
  if (!("diff_ids" in rootfs)) fail(D, "rootfs.diff_ids", "required field is missing");
  arrayField(rootfs.diff_ids, "rootfs.diff_ids", D).forEach((d, i) => digestField(d, `rootfs.diff_ids[${i}]`, D));

  if (doc.history !== undefined) {
    arrayField(doc.history, "history", D).forEach((h, i) => {
      const p = `history[${i}]`;
      const entry = objectField(h, p, D);
      for (const k of ["created", "author", "created_by", "comment"]) optionalString(entry, k, p, D);
      if (typeof entry.created === "string") dateTime(entry.created, `${p}.created`, D);
      if (entry.empty_layer !== undefined && typeof entry.empty_layer !== "boolean") {
        fail(D, `${p}.empty_layer`, `must be a boolean, got ${show(entry.empty_layer)}`);
      }
    });
  }
  return doc as unknown as ImageConfig;
}

// ---- internals ----

function hintKind(raw: string | undefined): { mediaType: string; kind: "index" | "manifest" } | undefined {
  if (raw === undefined) return undefined;
  if (typeof raw !== "string") fail("manifest", "mediaType", `expected media type must be a string, got ${show(raw)}`);
  const mt = (raw.split(";")[0] ?? "").trim().toLowerCase();
  if (GENERIC_MEDIA_TYPES.has(mt)) return undefined;
  if (DOCKER_SCHEMA1_MEDIA_TYPES.has(mt)) {
    fail("manifest", "mediaType", `Docker schema 1 manifests are not supported (served as ${show(mt)})`);
  }
  const kind = manifestKind(mt);
  if (kind === undefined) fail("manifest", "mediaType", `${show(mt)} is not an image manifest or index media type`);
  return { mediaType: mt, kind };
}

function manifestKind(mt: string): "index" | "manifest" | undefined {
  if (isIndexMediaType(mt)) return "index";
  if (isManifestMediaType(mt)) return "manifest";
  return undefined;
}

function decodeObject(bytes: Uint8Array | string, maxSize: number, doc: Doc): Json {
  const size = typeof bytes === "string" ? Buffer.byteLength(bytes) : bytes.byteLength;
  if (size > maxSize) {
    throw new InvalidManifestError(`$: ${doc} is ${size} bytes, over the ${maxSize}-byte limit`, {
      details: { field: "$", document: doc, size, limit: maxSize },
    });
  }
  let text: string;
  if (typeof bytes === "string") {
    text = bytes;
  } else {
    try {
      text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
    } catch (err) {
      fail(doc, "$", "not valid UTF-8", err);
    }
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    fail(doc, "$", `invalid JSON: ${(err as Error).message}`, err);
  }
  return objectField(value, "$", doc);
}

function commonFields(doc: Json, D: Doc): void {
  if (doc.artifactType !== undefined) mediaTypeField(doc.artifactType, "artifactType", D);
  if (doc.subject !== undefined) checkDescriptor(doc.subject, "subject", D);
  if (doc.annotations !== undefined) stringMap(doc.annotations, "annotations", D);
}

function checkDescriptor(value: unknown, path: string, D: Doc): void {
  const d = objectField(value, path || "$", D);
  if (!("mediaType" in d)) fail(D, join(path, "mediaType"), "required field is missing");
  mediaTypeField(d.mediaType, join(path, "mediaType"), D);
  if (!("digest" in d)) fail(D, join(path, "digest"), "required field is missing");
  const digest = digestField(d.digest, join(path, "digest"), D);
  if (!("size" in d)) fail(D, join(path, "size"), "required field is missing");
  const size = d.size;
  if (typeof size !== "number" || !Number.isInteger(size) || size < 0 || size > Number.MAX_SAFE_INTEGER) {
    fail(D, join(path, "size"), `must be an integer from 0 to ${Number.MAX_SAFE_INTEGER}, got ${show(size)}`);
  }
  if (d.urls !== undefined) {
    stringArray(d.urls, join(path, "urls"), D).forEach((u, i) => {
      if (!URL.canParse(u)) fail(D, `${join(path, "urls")}[${i}]`, `not a valid URL: ${show(u)}`);
    });
  }
  if (d.annotations !== undefined) stringMap(d.annotations, join(path, "annotations"), D);
  if (d.artifactType !== undefined) mediaTypeField(d.artifactType, join(path, "artifactType"), D);
  if (d.platform !== undefined) checkPlatform(d.platform, join(path, "platform"), D);
  if (d.data !== undefined) {
    const p = join(path, "data");
    if (typeof d.data !== "string" || !BASE64_RE.test(d.data)) fail(D, p, "must be a base64 string");
    const raw = Buffer.from(d.data, "base64");
    // Embedded data must be the blob itself, or a reader would trust bytes the digest never covered.
    if (raw.byteLength !== size) fail(D, p, `decodes to ${raw.byteLength} bytes but size is ${size}`);
    const [alg] = digest.split(":");
    const actual = `${alg}:${createHash(alg ?? "sha256").update(raw).digest("hex")}`;
    if (actual !== digest) fail(D, p, `content has digest ${actual}, descriptor says ${digest}`);
  }
}

function checkPlatform(value: unknown, path: string, D: Doc): void {
  const p = objectField(value, path || "$", D);
  for (const k of ["architecture", "os"]) {
    requiredString(p, k, path, D);
    if (p[k] === "") fail(D, join(path, k), "must not be empty");
  }
  optionalString(p, "os.version", path, D);
  optionalString(p, "variant", path, D);
  if (p["os.features"] !== undefined) stringArray(p["os.features"], join(path, "os.features"), D);
  if (p.features !== undefined) stringArray(p.features, join(path, "features"), D);
}

function digestField(value: unknown, path: string, D: Doc): string {
  try {
    return parseDigest(value);
  } catch (err) {
    const reason = err instanceof FerryError ? err.message : String(err);
    return fail(D, path, reason, err);
  }
}

function mediaTypeField(value: unknown, path: string, D: Doc): string {
  if (typeof value !== "string") fail(D, path, `must be a string, got ${show(value)}`);
  if (!MEDIA_TYPE_RE.test(value)) fail(D, path, `invalid media type ${show(value)}`);
  return value;
}

function dateTime(value: string, path: string, D: Doc): void {
  if (!RFC3339_RE.test(value) || Number.isNaN(Date.parse(value.replace(" ", "T")))) {
    fail(D, path, `not an RFC 3339 date-time: ${show(value)}`);
  }
}

function objectField(value: unknown, path: string, D: Doc): Json {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    fail(D, path, `must be an object, got ${kindOf(value)}`);
  }
  return value as Json;
}

function arrayField(value: unknown, path: string, D: Doc): unknown[] {
  if (!Array.isArray(value)) fail(D, path, `must be an array, got ${kindOf(value)}`);
  return value;
}

function stringArray(value: unknown, path: string, D: Doc): string[] {
  const arr = arrayField(value, path, D);
  arr.forEach((v, i) => {
    if (typeof v !== "string") fail(D, `${path}[${i}]`, `must be a string, got ${show(v)}`);
  });
  return arr as string[];
}

function stringMap(value: unknown, path: string, D: Doc): void {
  const m = objectField(value, path, D);
  for (const [k, v] of Object.entries(m)) {
    if (typeof v !== "string") fail(D, join(path, k), `must be a string, got ${show(v)}`);
  }
}

function requiredString(obj: Json, key: string, parent: string, D: Doc): void {
  if (!(key in obj)) fail(D, join(parent, key), "required field is missing");
  if (typeof obj[key] !== "string") fail(D, join(parent, key), `must be a string, got ${show(obj[key])}`);
}

function optionalString(obj: Json, key: string, parent: string, D: Doc): void {
  if (obj[key] !== undefined && typeof obj[key] !== "string") {
    fail(D, join(parent, key), `must be a string, got ${show(obj[key])}`);
  }
}

/** `a.b` for identifier-like keys, `a["x.y"]` for others (annotation keys have dots). */
function join(parent: string, key: string): string {
  if (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key)) return parent && parent !== "$" ? `${parent}.${key}` : key;
  const quoted = `[${JSON.stringify(key)}]`;
  return parent && parent !== "$" ? `${parent}${quoted}` : `$${quoted}`;
}

function fail(document: Doc, field: string, reason: string, cause?: unknown): never {
  const f = field || "$";
  throw new InvalidManifestError(`${f}: ${reason}`, {
    ...(cause === undefined ? {} : { cause }),
    details: { field: f, document },
  });
}

function kindOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  return typeof v;
}

function show(v: unknown): string {
  let s: string;
  try {
    s = v === undefined ? "undefined" : JSON.stringify(v);
  } catch {
    s = String(v);
  }
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
