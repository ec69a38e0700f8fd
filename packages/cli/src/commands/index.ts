/**
 * The command table. Each command's module (and what it imports: the HTTP transport, the store,
 * the progress renderer) is loaded only when that command runs, so `ferry --help` and the
 * `content` plumbing start faster.
 */
import type { Command } from "../command.ts";

export interface CommandEntry {
  name: string;
  summary: string;
  /**
   * Its stdout only reports on work (progress, the result): when the reader goes away the work
   * goes on unreported, rather than ending with success half done. Otherwise stdout is the
   * product (`fetch | head`) and the command stops quietly.
   */
  reportsOnStdout?: boolean;
  load(): Promise<Command>;
}

const content = (name: string) => async (): Promise<Command> => {
  const m = await import("./content.ts");
  return m.contentCommands.find((c) => c.name === name) as Command;
};

export const commandTable: readonly CommandEntry[] = [
  { name: "pull", reportsOnStdout: true, summary: "pull an image (or any artifact) into the content store", load: async () => (await import("./pull.ts")).pullCommand },
  { name: "push", reportsOnStdout: true, summary: "push a named image of the content store to a registry", load: async () => (await import("./push.ts")).pushCommand },
  { name: "copy", reportsOnStdout: true, summary: "copy an image between registries and OCI layouts", load: async () => (await import("./copy.ts")).copyCommand },
  { name: "fetch", summary: "write a manifest or blob to stdout (streaming, verified)", load: async () => (await import("./fetch.ts")).fetchCommand },
  { name: "resolve", summary: "print the descriptor a reference points to (JSON)", load: async () => (await import("./resolve.ts")).resolveCommand },
  { name: "content ingest", summary: "write stdin into the store under a ref (resumable), verify and commit it", load: content("content ingest") },
  { name: "content active", summary: "list ingests in progress (or interrupted)", load: content("content active") },
  { name: "content ls", summary: "list committed blobs", load: content("content ls") },
  { name: "content path", summary: "print the file path of a committed blob", load: content("content path") },
  { name: "content rm", summary: "delete committed blobs", load: content("content rm") },
  { name: "content prune", summary: "remove expired ingests and blobs no name refers to", load: content("content prune") },
];
