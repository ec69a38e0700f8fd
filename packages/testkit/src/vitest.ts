/**
 * vitest helpers: one real registry per describe block, skipped when docker-registry is missing
 * (failing instead under CI=true).
 */
import { afterAll, beforeAll, describe } from "vitest";
import { FailedPreconditionError } from "@ferry/core";
import { requireTools } from "./tools.ts";
import { startDockerRegistry, type RunningRegistry, type StartDockerRegistryOptions } from "./docker-registry.ts";
import { startTokenServer, type StartTokenServerOptions, type TokenServer } from "./token-server.ts";

/** Handed to the describe body; its members are usable inside tests and hooks (after beforeAll). */
export interface RegistryContext {
  readonly registry: RunningRegistry;
  /** The token server, when `tokenAuth` was given. */
  readonly tokens: TokenServer;
}

export interface DescribeWithRegistryOptions extends StartDockerRegistryOptions {
  /** Extra tools the block needs (e.g. `["skopeo"]`); all are checked like docker-registry. */
  tools?: string[];
  /**
   * Start a {@link startTokenServer} first and protect the registry with it (overrides `auth`).
   * Default: no token server.
   */
  tokenAuth?: StartTokenServerOptions;
}

/**
 * `describe(name, fn)` with a registry started in `beforeAll` and stopped in `afterAll`.
 * Skipped when a needed tool is missing, unless `CI=true` (then the file fails).
 *
 * ```ts
 * describeWithRegistry("pull", (ctx) => {
 *   it("resolves", async () => { await fetch(`${ctx.registry.url}/v2/`); });
 * }, { tools: ["skopeo"] });
 * ```
 */
export function describeWithRegistry(
  name: string,
  fn: (ctx: RegistryContext) => void,
  options: DescribeWithRegistryOptions = {},
): void {
  const { tools = [], tokenAuth, ...start } = options;
  const run = requireTools("docker-registry", ...(tokenAuth ? ["openssl"] : []), ...tools);
  describe.skipIf(!run)(name, () => {
    let registry: RunningRegistry | undefined;
    let tokens: TokenServer | undefined;
    const ctx: RegistryContext = {
      get registry(): RunningRegistry {
        if (registry === undefined) throw new FailedPreconditionError("registry not started yet: use ctx.registry inside tests or hooks");
        return registry;
      },
      get tokens(): TokenServer {
        if (tokens === undefined) throw new FailedPreconditionError("no token server: pass tokenAuth to describeWithRegistry");
        return tokens;
      },
    };
    beforeAll(async () => {
      if (tokenAuth) {
        tokens = await startTokenServer(tokenAuth);
        start.auth = tokens.registryAuth();
      }
      registry = await startDockerRegistry(start);
    });
    afterAll(async () => {
      await registry?.stop();
      await tokens?.stop();
    });
    fn(ctx);
  });
}
