import { pull } from "@ferry/core";
import { validateName } from "@ferry/store-fs";
import { insecureHelp, perHostHelp, registryFlags, userHelp, registryOptions, storeHelp, storeOption, stringOpt, type Command } from "../command.ts";
import { Endpoints, storeDir } from "../endpoint.ts";
import { runTransfer, transferFlags, transferHelp, transferOptions } from "../transfer.ts";

export const pullCommand: Command = {
  name: "pull",
  summary: "pull an image (or any artifact) into the content store",
  usage: "pull REF [--store DIR] [--platform P | --all-platforms] [--concurrency N] [--insecure HOST]…",
  description:
    "Resolves REF (a registry reference, or oci:DIR[:NAME]), downloads every missing blob of its graph into the store\n" +
    "(resuming partial downloads), commits children before parents and records the root under the name REF\n" +
    "(or --name). Only the host's platform of an index is pulled unless --platform/--all-platforms say otherwise.",
  options: { ...storeOption, ...registryOptions, ...transferOptions, name: { type: "string" } },
  optionHelp: [storeHelp, ...transferHelp, ["--name NAME", "name recorded in the store; default REF"], insecureHelp, userHelp, perHostHelp],
  minArgs: 1,
  maxArgs: 1,
  async run(ctx) {
    const ref = ctx.positionals[0] as string;
    const endpoints = new Endpoints(registryFlags(ctx.values));
    // Refuse bad options before anything is opened or created.
    const selected = transferFlags(ctx.values, true);
    try {
      const store = await endpoints.layout(storeDir(stringOpt(ctx.values, "store"), ctx.io.cwd), false);
      const source = await endpoints.source(ref, ctx.io.cwd);
      // The name must fit a layout's ref.name before a byte moves: refused only at the end, it
      // left every blob of the pull unnamed (a registry repository may hold `__`, a name not).
      const name = stringOpt(ctx.values, "name") ?? source.ref;
      validateName(name);
      const op = pull(source.ref, {
        resolver: source.endpoint,
        store,
        name,
        signal: ctx.signal,
        ...selected,
      });
      await runTransfer(ctx, op, "pulled", ref);
    } finally {
      await endpoints.close();
    }
  },
};
