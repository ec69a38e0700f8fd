/**
 * The registries the fetcher's integration suites run against, as a vitest matrix: ferry's own
 * embedded registry (@ferry/registry, in this process) and the real docker-registry
 * (distribution 2.8, testkit). The same assertions run against both; where a server lacks a
 * feature the case reads a named quirk below and says why it is skipped for that server.
 */
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import { afterAll, beforeAll, describe } from "vitest";
import { FailedPreconditionError } from "@ferry/core";
import { requireTools, startDockerRegistry, startTokenServer } from "@ferry/testkit";
// Not a declared dependency of @ferry/fetcher (the registry depends on the fetcher for its own
// tests): reached by path, test code only.
import { createRegistry } from "../../registry/src/index.ts";

/** One request as the server saw it. */
export interface SeenRequest {
  method: string;
  /** Path and query, as sent. */
  uri: string;
}

export interface TestServer {
  /** `127.0.0.1:PORT`, for references. */
  host: string;
  /** `http://127.0.0.1:PORT`. */
  url: string;
  /** Every request this server received so far, in order. */
  requests(): SeenRequest[];
  /** With token auth: every scope asked of the token endpoint since the last `clearTokenLog`. */
  tokenScopes(): string[];
  clearTokenLog(): void;
}

/**
 * Access control for a matrix: `basic` = one htpasswd user (ferry: `auth.users`), `token` = the
 * docker token flow (ferry: its built-in token endpoint; docker-registry: the testkit token server).
 */
export type ServerAuth = { basic: { username: string; password: string } } | { token: { users: Record<string, string> } };

/** What a server does differently; `true` = behaves as the spec says. */
export interface ServerQuirks {
  /** Tag lists honour `n`/`last` (distribution 2.8 ignores them and answers one unsorted page). */
  tagsPagination: boolean;
  /** The referrers API exists (2.8 has none: clients fall back to the tag schema). */
  referrersApi: boolean;
}

export interface ServerTarget {
  name: string;
  /** Tools the server itself needs, with and without auth. */
  tools(auth?: ServerAuth): string[];
  quirks: ServerQuirks;
  start(auth?: ServerAuth): Promise<TestServer & { stop(): Promise<void> }>;
}

interface RequestStart {
  request: IncomingMessage;
  socket: Socket;
}

const embedded: ServerTarget = {
  name: "ferry embedded registry",
  tools: () => [],
  quirks: { tagsPagination: true, referrersApi: true },
  async start(auth) {
    const registry = createRegistry(
      auth === undefined
        ? {}
        : "basic" in auth
          ? { auth: { users: { [auth.basic.username]: auth.basic.password } } }
          : { auth: { scheme: "bearer", users: auth.token.users } },
    );
    const server = await registry.listen(0, "127.0.0.1");
    // The server runs in this process: its requests are read from node:http's diagnostics
    // channel, picked out by the local port (no wrapper around the registry's own handler).
    const seen: SeenRequest[] = [];
    const onStart = (message: unknown): void => {
      const { request, socket } = message as RequestStart;
      if (socket.localPort === server.port) seen.push({ method: request.method ?? "", uri: request.url ?? "" });
    };
    subscribe("http.server.request.start", onStart);
    return {
      host: server.host,
      url: server.url,
      requests: () => [...seen],
      tokenScopes: () => [...(registry.authStats?.scopes ?? [])],
      clearTokenLog: () => {
        if (registry.authStats !== undefined) registry.authStats.scopes.length = 0;
      },
      async stop() {
        unsubscribe("http.server.request.start", onStart);
        await registry.close();
      },
    };
  },
};

const dockerRegistry: ServerTarget = {
  name: "docker-registry 2.8",
  tools: (auth) => ["docker-registry", ...(auth === undefined ? [] : "basic" in auth ? ["htpasswd"] : ["openssl"])],
  quirks: { tagsPagination: false, referrersApi: false },
  async start(auth) {
    const tokens = auth !== undefined && "token" in auth ? await startTokenServer({ users: auth.token.users }) : undefined;
    const r = await startDockerRegistry(
      tokens !== undefined ? { auth: tokens.registryAuth() } : auth !== undefined && "basic" in auth ? { auth: { htpasswd: auth.basic } } : {},
    );
    return {
      host: r.host,
      url: r.url,
      // One log line per routed request: `… http.request.method=PATCH … http.request.uri=/v2/…`,
      // the uri quoted only when it holds characters such as `?` or `=`. Unrouted paths (no
      // referrers API in 2.8) are not logged.
      requests: () =>
        [...r.readLog().matchAll(/http\.request\.method=(\w+)[^\n]*?http\.request\.uri=(?:"([^"]*)"|(\S+))/g)].map((m) => ({
          method: m[1]!,
          uri: m[2] ?? m[3]!,
        })),
      tokenScopes: () => (tokens?.log ?? []).flatMap((l) => l.scopes),
      clearTokenLog: () => {
        if (tokens !== undefined) tokens.log.length = 0;
      },
      async stop() {
        await r.stop();
        await tokens?.stop();
      },
    };
  },
};

export const serverTargets: ServerTarget[] = [embedded, dockerRegistry];

export interface ServerContext {
  readonly server: TestServer;
  readonly target: ServerTarget;
}

/**
 * `describe.each` over {@link serverTargets}: a server (with `auth` when given) started in
 * `beforeAll`, stopped in `afterAll`. A target whose tools (or the extra `tools`) are missing is skipped, except under
 * `CI=true`, where the file fails.
 */
export function describeEachServer(
  name: string,
  fn: (ctx: ServerContext) => void,
  options: { tools?: string[]; auth?: ServerAuth } = {},
): void {
  describe.each(serverTargets)(`${name}: $name`, (target) => {
    const run = requireTools(...target.tools(options.auth), ...(options.tools ?? []));
    describe.skipIf(!run)(target.name, () => {
      let server: (TestServer & { stop(): Promise<void> }) | undefined;
      beforeAll(async () => {
        server = await target.start(options.auth);
      });
      afterAll(async () => {
        await server?.stop();
      });
      fn({
        target,
        get server(): TestServer {
          if (server === undefined) throw new FailedPreconditionError("server not started yet: use ctx.server inside tests or hooks");
          return server;
        },
      });
    });
  });
}
