import { defineConfig } from "vitest/config";

// The benchmark's own unit tests (not part of `pnpm test`): pnpm exec vitest run --config bench/vitest.config.ts
export default defineConfig({
  test: {
    include: ["bench/**/*.test.ts"],
    root: new URL("..", import.meta.url).pathname,
    testTimeout: 30_000,
  },
});
