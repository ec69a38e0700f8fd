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
import { requireTools, startDockerRegistry } from "@ferry/testkit";
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
}

/** What a server does differently; `true` = behaves as the spec says. */
export interface ServerQuirks {
  /** Tag lists honour `n`/`last` (distribution 2.8 ignores them and answers one unsorted page). */
  tagsPagination: boolean;
  /** The referrers API exists (2.8 has none: clients fall back to the tag schema). */
  referrersApi: boolean;
}

export interface ServerTarget {
  name: string;
  /** Tools the server itself needs. */
  tools: string[];
  quirks: ServerQuirks;
  start(): Promise<TestServer & { stop(): Promise<void> }>;
}

interface RequestStart {
  request: IncomingMessage;
  socket: Socket;
}

const embedded: ServerTarget = {
  name: "ferry embedded registry",
  tools: [],
  quirks: { tagsPagination: true, referrersApi: true },
  async start() {
    const registry = createRegistry();
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
      async stop() {
        unsubscribe("http.server.request.start", onStart);
        await registry.close();
      },
    };
  },
};

const dockerRegistry: ServerTarget = {
  name: "docker-registry 2.8",
  tools: ["docker-registry"],
  quirks: { tagsPagination: false, referrersApi: false },
  async start() {
    const r = await startDockerRegistry();
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
      stop: () => r.stop(),
    };
  },
};

export const serverTargets: ServerTarget[] = [embedded, dockerRegistry];

export interface ServerContext {
  readonly server: TestServer;
  readonly target: ServerTarget;
}

/**
 * `describe.each` over {@link serverTargets}: a server started in `beforeAll`, stopped in
 * `afterAll`. A target whose tools (or the extra `tools`) are missing is skipped, except under
 * `CI=true`, where the file fails.
 */
export function describeEachServer(name: string, fn: (ctx: ServerContext) => void, options: { tools?: string[] } = {}): void {
  describe.each(serverTargets)(`${name}: $name`, (target) => {
    const run = requireTools(...target.tools, ...(options.tools ?? []));
    describe.skipIf(!run)(target.name, () => {
      let server: (TestServer & { stop(): Promise<void> }) | undefined;
      beforeAll(async () => {
        server = await target.start();
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
