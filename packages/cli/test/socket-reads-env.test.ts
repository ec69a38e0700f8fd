/** FERRY_SOCKET_READS=0: the CLI's registry resolver reads every blob through undici. */
import { expect, it } from "vitest";
import { registryEnvOptions } from "../src/endpoint.ts";

it("maps FERRY_SOCKET_READS=0 to socketReadMinBytes Infinity and keepAliveReads false, anything else to the defaults", () => {
  expect(registryEnvOptions({})).toEqual({});
  expect(registryEnvOptions({ FERRY_SOCKET_READS: "1" })).toEqual({});
  expect(registryEnvOptions({ FERRY_SOCKET_READS: "" })).toEqual({});
  expect(registryEnvOptions({ FERRY_SOCKET_READS: "0" })).toEqual({ socketReadMinBytes: Number.POSITIVE_INFINITY, keepAliveReads: false });
});
