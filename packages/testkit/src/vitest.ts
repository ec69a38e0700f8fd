/**
 * vitest helpers: one real registry per describe block, skipped when docker-registry is missing
 * (failing instead under CI=true).
 */
import { afterAll, beforeAll, describe } from "vitest";
import { FailedPreconditionError } from "@ferry/core";
import { requireTools } from "./tools.ts";
import { startDockerRegistry, type RunningRegistry, type StartDockerRegistryOptions } from "./docker-registry.ts";

/** Handed to the describe body; `registry` is usable inside tests and hooks (after beforeAll). */
export interface RegistryContext {
  readonly registry: RunningRegistry;
}

export interface DescribeWithRegistryOptions extends StartDockerRegistryOptions {
  /** Extra tools the block needs (e.g. `["skopeo"]`); all are checked like docker-registry. */
  tools?: string[];
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
  const { tools = [], ...start } = options;
  const run = requireTools("docker-registry", ...tools);
  describe.skipIf(!run)(name, () => {
    let current: RunningRegistry | undefined;
    const ctx: RegistryContext = {
      get registry(): RunningRegistry {
        if (current === undefined) throw new FailedPreconditionError("registry not started yet: use ctx.registry inside tests or hooks");
        return current;
      },
    };
    beforeAll(async () => {
      current = await startDockerRegistry(start);
    });
    afterAll(async () => {
      await current?.stop();
    });
    fn(ctx);
  });
}
