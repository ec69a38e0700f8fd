import { push } from "@ferry/core";
import { insecureHelp, perHostHelp, registryFlags, userHelp, registryOptions, storeHelp, storeOption, stringOpt, type Command } from "../command.ts";
import { Endpoints, storeDir } from "../endpoint.ts";
import { runTransfer, transferFlags, transferHelp, transferOptions } from "../transfer.ts";

export const pushCommand: Command = {
  name: "push",
  summary: "push a named image of the content store to a registry",
  usage: "push REF [--store DIR] [--from NAME] [--mount-from REPO] [--platform P | --all-platforms] [--concurrency N]",
  description:
    "Pushes the graph the store holds under NAME (default: REF itself) to the registry reference REF: blobs first\n" +
    "(skipped when present, mounted from --mount-from when given), then manifests, the tag last. An index goes\n" +
    "whole (a store holding only some of its platforms is refused, exit 3); with --platform P that platform's image\n" +
    "is pushed alone and the tag points at its manifest.",
  options: { ...storeOption, ...registryOptions, ...transferOptions, from: { type: "string" }, "mount-from": { type: "string" } },
  optionHelp: [
    storeHelp,
    ["--from NAME", "name (or @digest) of the image in the store; default REF"],
    ["--mount-from REPO", "repository on the same registry to mount blobs from"],
    ...transferHelp,
    insecureHelp,
    userHelp,
    perHostHelp,
  ],
  minArgs: 1,
  maxArgs: 1,
  async run(ctx) {
    const ref = ctx.positionals[0] as string;
    const endpoints = new Endpoints(registryFlags(ctx.values));
    // Refuse bad options before anything is opened or created.
    const selected = transferFlags(ctx.values, false);
    try {
      const store = await endpoints.layout(storeDir(stringOpt(ctx.values, "store"), ctx.io.cwd), true);
      const mountFrom = stringOpt(ctx.values, "mount-from");
      const op = push(ref, {
        store,
        name: stringOpt(ctx.values, "from") ?? ref,
        resolver: endpoints.registry(),
        signal: ctx.signal,
        ...(mountFrom !== undefined ? { from: mountFrom } : {}),
        ...selected,
      });
      await runTransfer(ctx, op, "pushed", ref);
    } finally {
      await endpoints.close();
    }
  },
};
