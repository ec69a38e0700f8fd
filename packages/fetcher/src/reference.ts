/**
 * Image references, parsed the way the docker CLI does: `[host[:port]/]path[:tag][@digest]`.
 *
 * Normalisation: a name without a registry lives on Docker Hub (`docker.io`), and a single-component
 * Docker Hub name gets the `library/` prefix. `index.docker.io` and `registry-1.docker.io` are
 * spelled `docker.io`; the API of Docker Hub itself is served by `registry-1.docker.io`.
 */
import { type Digest, InvalidReferenceError, isValidTag, parseDigest } from "@ferry/core";

/** The canonical name of Docker Hub. */
export const DOCKER_HUB = "docker.io";
/** The host that serves Docker Hub's registry API. */
export const DOCKER_HUB_API_HOST = "registry-1.docker.io";
/** The longest `registry/repository` name accepted (the distribution limit). */
export const NAME_MAX_LENGTH = 255;

/** A parsed, normalised image reference. */
export interface Reference {
  /** Registry host with optional port, lowercased (`docker.io`, `127.0.0.1:5000`, `[::1]:5000`). */
  readonly registry: string;
  /** Repository path inside the registry (`library/alpine`, `org/team/app`). */
  readonly repository: string;
  /** Tag, when given (or the default tag when neither tag nor digest was given). */
  readonly tag?: string;
  /** Digest, when given. When both tag and digest are present the digest wins for resolving. */
  readonly digest?: Digest;
  /** `registry/repository`. */
  readonly name: string;
  /** Host (and port) to send API requests to: `registry-1.docker.io` for Docker Hub, else `registry`. */
  readonly apiHost: string;
  /** Canonical form: `name[:tag][@digest]`. */
  toString(): string;
}

export interface ParseReferenceOptions {
  /** Registry for names that do not start with a host. Default `docker.io`. */
  defaultRegistry?: string;
  /**
   * Tag to use when the input has neither tag nor digest. Default `"latest"`; `false` leaves
   * `tag` undefined (for callers that list tags or address a repository only).
   */
  defaultTag?: string | false;
}

// One path component: lowercase alphanumerics joined by `.`, `_`, `__` or runs of `-`.
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
// A DNS-ish host label list, or a bracketed IPv6 literal, with an optional port.
const HOST_NAME = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*$/;
const IPV6 = /^\[[a-fA-F0-9:.]+\]$/;
const PORT = /^[0-9]+$/;
const HEX64 = /^[a-f0-9]{64}$/;

class ParsedReference implements Reference {
  readonly registry: string;
  readonly repository: string;
  readonly tag?: string;
  readonly digest?: Digest;
  readonly name: string;
  readonly apiHost: string;

  constructor(registry: string, repository: string, tag: string | undefined, digest: Digest | undefined) {
    this.registry = registry;
    this.repository = repository;
    if (tag !== undefined) this.tag = tag;
    if (digest !== undefined) this.digest = digest;
    this.name = `${registry}/${repository}`;
    this.apiHost = registry === DOCKER_HUB ? DOCKER_HUB_API_HOST : registry;
  }

  toString(): string {
    return `${this.name}${this.tag === undefined ? "" : `:${this.tag}`}${this.digest === undefined ? "" : `@${this.digest}`}`;
  }
}

function invalid(input: string, reason: string, cause?: unknown): InvalidReferenceError {
  const shown = input.length > 300 ? `${input.slice(0, 297)}...` : input;
  return new InvalidReferenceError(`invalid reference ${JSON.stringify(shown)}: ${reason}`, {
    cause,
    details: { reference: shown, reason },
  });
}

/**
 * Parse and normalise an image reference. Throws {@link InvalidReferenceError} whose message and
 * `details.reason` say what is wrong (uppercase in the repository, empty component, bad tag, bad
 * digest, name too long, …).
 */
export function parseReference(input: string, options: ParseReferenceOptions = {}): Reference {
  if (typeof input !== "string") throw invalid(String(input), "reference must be a string");
  if (input === "") throw invalid(input, "empty reference");
  if (/\s/.test(input)) throw invalid(input, "whitespace is not allowed");
  if (/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(input)) throw invalid(input, "a reference has no URL scheme (remove the \"scheme://\" prefix)");
  if (HEX64.test(input)) throw invalid(input, "a 64-character hex string is an image ID, not a repository name");

  // Digest: everything after the first '@'.
  let rest = input;
  let digest: Digest | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    const raw = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (raw === "") throw invalid(input, "empty digest after \"@\"");
    try {
      digest = parseDigest(raw);
    } catch (err) {
      throw invalid(input, `bad digest: ${err instanceof Error ? err.message : String(err)}`, err);
    }
  }

  // Tag: after the last ':' that follows the last '/' (a ':' before it is a port).
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf("/");
  const colon = rest.indexOf(":", lastSlash + 1);
  // A ':' inside an IPv6 literal of a host-only input is not a tag separator, but such an input
  // has no repository anyway, so it fails below with a clearer reason.
  if (colon >= 0) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (tag === "") throw invalid(input, "empty tag after \":\"");
    if (!isValidTag(tag)) {
      throw invalid(input, tag.length > 128 ? "tag longer than 128 characters" : `bad tag ${JSON.stringify(tag)}: allowed are [A-Za-z0-9_.-], not starting with "." or "-"`);
    }
  }
  if (rest === "") throw invalid(input, "missing repository name");

  // Registry: the first component when it looks like a host.
  let registry: string | undefined;
  let path = rest;
  const slash = rest.indexOf("/");
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes(".") || first.includes(":") || first === "localhost" || first.startsWith("[")) {
      registry = checkHost(input, first);
      path = rest.slice(slash + 1);
    }
  }
  const nameLength = rest.length;

  const components = path.split("/");
  for (const c of components) {
    if (c === "") throw invalid(input, "empty path component (leading, trailing or doubled \"/\")");
    if (!PATH_COMPONENT.test(c)) {
      const reason = /[A-Z]/.test(c)
        ? `repository name must be lowercase (component ${JSON.stringify(c)})`
        : `bad path component ${JSON.stringify(c)}: use [a-z0-9] separated by ".", "_", "__" or "-"`;
      throw invalid(input, reason);
    }
  }
  if (nameLength > NAME_MAX_LENGTH) throw invalid(input, `repository name longer than ${NAME_MAX_LENGTH} characters`);

  registry = normaliseRegistry(registry ?? options.defaultRegistry ?? DOCKER_HUB);
  if (registry === DOCKER_HUB && components.length === 1) path = `library/${path}`;

  if (tag === undefined && digest === undefined) {
    const def = options.defaultTag ?? "latest";
    if (def !== false) tag = def;
  }
  return new ParsedReference(registry, path, tag, digest);
}

/** Validate `host[:port]` or `[ipv6][:port]`; returns it lowercased. */
function checkHost(input: string, host: string): string {
  let name = host;
  let port: string | undefined;
  if (host.startsWith("[")) {
    const end = host.indexOf("]");
    if (end < 0) throw invalid(input, `bad registry host ${JSON.stringify(host)}: unterminated IPv6 literal`);
    name = host.slice(0, end + 1);
    const after = host.slice(end + 1);
    if (after !== "") {
      if (!after.startsWith(":")) throw invalid(input, `bad registry host ${JSON.stringify(host)}`);
      port = after.slice(1);
    }
    if (!IPV6.test(name)) throw invalid(input, `bad registry host ${JSON.stringify(host)}: bad IPv6 literal`);
  } else {
    const c = host.lastIndexOf(":");
    if (c >= 0) {
      name = host.slice(0, c);
      port = host.slice(c + 1);
    }
    if (!HOST_NAME.test(name)) throw invalid(input, `bad registry host ${JSON.stringify(host)}`);
  }
  if (port !== undefined && (!PORT.test(port) || Number(port) > 65535 || port.length > 5)) {
    throw invalid(input, `bad registry port in ${JSON.stringify(host)}`);
  }
  return host.toLowerCase();
}

/** Spell Docker Hub's aliases `docker.io`; lowercases the host. */
export function normaliseRegistry(host: string): string {
  const h = host.toLowerCase();
  return h === "index.docker.io" || h === "registry-1.docker.io" ? DOCKER_HUB : h;
}

/** Split `host[:port]` (also `[v6]:port`) into the bare host and the port, if any. */
export function splitHostPort(hostPort: string): { host: string; port?: string } {
  if (hostPort.startsWith("[")) {
    const end = hostPort.indexOf("]");
    if (end >= 0) {
      const rest = hostPort.slice(end + 1);
      return rest.startsWith(":") ? { host: hostPort.slice(0, end + 1), port: rest.slice(1) } : { host: hostPort.slice(0, end + 1) };
    }
  }
  const c = hostPort.lastIndexOf(":");
  // Two or more colons without brackets: a bare IPv6 address, no port.
  if (c < 0 || hostPort.indexOf(":") !== c) return { host: hostPort };
  return { host: hostPort.slice(0, c), port: hostPort.slice(c + 1) };
}

/**
 * True for loopback hosts (any port): `localhost`, `*.localhost`, `127.0.0.0/8` and `[::1]`.
 * Accepts `host`, `host:port`, a bracketed or bare IPv6 literal.
 */
export function isLoopbackHost(hostPort: string): boolean {
  const host = splitHostPort(hostPort.toLowerCase()).host;
  if (host === "localhost" || host.endsWith(".localhost")) return true;
  if (host === "[::1]" || host === "::1" || host === "[0:0:0:0:0:0:0:1]") return true;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

export interface DefaultSchemeOptions {
  /**
   * Registries reached over plain HTTP. An entry with a port (`reg.lan:5000`) matches that port
   * only; an entry without one matches the host on any port. Default `[]`.
   */
  insecure?: string[];
}

/**
 * The scheme to talk to `host` (`host[:port]`) with: `http` for loopback hosts (see
 * {@link isLoopbackHost}) and for hosts listed in `options.insecure`, `https` otherwise.
 */
export function defaultScheme(host: string, options: DefaultSchemeOptions = {}): "http" | "https" {
  if (isLoopbackHost(host)) return "http";
  const h = host.toLowerCase();
  const bare = splitHostPort(h).host;
  for (const entry of options.insecure ?? []) {
    const e = entry.toLowerCase().replace(/^https?:\/\//, "").replace(/\/+$/, "");
    if (e === h) return "http";
    if (splitHostPort(e).port === undefined && e === bare) return "http";
  }
  return "https";
}

/**
 * The short form docker prints: `docker.io/` and a lone `library/` dropped
 * (`docker.io/library/alpine:3` → `alpine:3`, `docker.io/bitnami/redis` → `bitnami/redis`).
 */
export function familiarString(ref: Reference): string {
  let name = ref.name;
  if (ref.registry === DOCKER_HUB) {
    name = ref.repository;
    if (name.startsWith("library/") && name.indexOf("/", 8) < 0) name = name.slice(8);
  }
  return `${name}${ref.tag === undefined ? "" : `:${ref.tag}`}${ref.digest === undefined ? "" : `@${ref.digest}`}`;
}
