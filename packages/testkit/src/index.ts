// Public surface of @ferry/testkit (private workspace package: tests, benchmarks and demos only).

// Tools on PATH, skipping without them (failing under CI=true), running them.
export * from "./tools.ts";
export * from "./free-port.ts";
// The reference registry (distribution 2.8) and the vitest block that owns one.
export * from "./docker-registry.ts";
export * from "./vitest.ts";
// Random images: bytes, tar, OCI layouts, skopeo pushes.
export * from "./random-bytes.ts";
export * from "./tar.ts";
export * from "./build-image.ts";
export * from "./skopeo.ts";
export * from "./make-image.ts";
// Misbehaving networks and registries; docker token auth.
export * from "./fault-proxy.ts";
export * from "./token-server.ts";
// Filesystem capabilities.
export * from "./direct-io.ts";
