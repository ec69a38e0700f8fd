// Public surface of @ferry/testkit (private workspace package: tests, benchmarks and demos only).
export * from "./tools.ts";
export * from "./free-port.ts";
export * from "./docker-registry.ts";
export * from "./vitest.ts";
export * from "./random-bytes.ts";
export * from "./tar.ts";
export * from "./build-image.ts";
export * from "./skopeo.ts";
export * from "./make-image.ts";
export * from "./fault-proxy.ts";
export * from "./token-server.ts";
