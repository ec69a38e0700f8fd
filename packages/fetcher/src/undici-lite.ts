/**
 * The two pieces of undici ferry uses, `Agent` and `request`, loaded from their own modules.
 * undici's index loads everything it has (fetch, WebSocket, cache stores, mocks, …): ~1 MB of
 * JavaScript and ~9 MB of a process's RSS that a registry client never runs.
 */
import type { Agent as AgentType, Dispatcher } from "undici";
// undici ships no typings for these paths; the casts below restate the public types.
// @ts-expect-error untyped CommonJS module
import AgentImpl from "undici/lib/dispatcher/agent.js";
// @ts-expect-error untyped CommonJS module
import requestImpl from "undici/lib/api/api-request.js";
// @ts-expect-error untyped CommonJS module
import globalImpl from "undici/lib/global.js";

export const Agent = AgentImpl as typeof AgentType;
export type Agent = AgentType;

const dispatchRequest = requestImpl as (this: Dispatcher, opts: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>;

const { getGlobalDispatcher } = globalImpl as { getGlobalDispatcher(): Dispatcher };

/** Options of {@link request}: undici's `request` options. */
export type LiteRequestOptions = Omit<Dispatcher.RequestOptions, "origin" | "path" | "method"> & {
  method?: Dispatcher.HttpMethod;
  /** Default: undici's global dispatcher (shared with Node's `fetch`). */
  dispatcher?: Dispatcher;
};

/** undici's `request(url, options)`, as its index exports it. */
export function request(url: URL | string, options: LiteRequestOptions): Promise<Dispatcher.ResponseData> {
  const u = typeof url === "string" ? new URL(url) : url;
  const { dispatcher = getGlobalDispatcher(), ...rest } = options;
  return dispatchRequest.call(dispatcher, {
    ...rest,
    origin: u.origin,
    path: u.search ? `${u.pathname}${u.search}` : u.pathname,
    method: options.method ?? (options.body ? "PUT" : "GET"),
  });
}
