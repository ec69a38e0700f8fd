import { copy } from "@ferry/core";
import { parseReference } from "@ferry/fetcher";
import { insecureHelp, perHostHelp, registryFlags, userHelp, registryOptions, stringOpt, type Command } from "../command.ts";
import { Endpoints, parseTarget } from "../endpoint.ts";
import { runTransfer, transferFlags, transferHelp, transferOptions } from "../transfer.ts";

export const copyCommand: Command = {
  name: "copy",
  summary: "copy an image between registries and OCI layouts",
  usage: "copy SRC DST [--platform P | --all-platforms] [--concurrency N] [--mount-from REPO]",
  description:
    "SRC and DST are each oci:DIR[:NAME] (an OCI image layout; created when it is the destination) or a registry\n" +
    "reference. Without NAME a source layout must hold exactly one name; a destination layout gets the source's tag\n" +
    "(or name, else latest). Every platform is copied unless --platform says otherwise.",
  options: { ...registryOptions, ...transferOptions, "mount-from": { type: "string" } },
  optionHelp: [...transferHelp, ["--mount-from REPO", "repository on the destination registry to mount blobs from"], insecureHelp, userHelp, perHostHelp],
  minArgs: 2,
  maxArgs: 2,
  async run(ctx) {
    const [srcText, dstText] = ctx.positionals as [string, string];
    const endpoints = new Endpoints(registryFlags(ctx.values));
    // Refuse bad options before anything is opened or created.
    const selected = transferFlags(ctx.values, true);
    try {
      const from = await endpoints.source(srcText, ctx.io.cwd);
      const { target: src, ref: srcRef } = from;
      const dst = parseTarget(dstText, ctx.io.cwd);
      const to = await endpoints.open(dst, "destination");
      let dstRef: string;
      if (dst.kind === "registry") dstRef = dstText;
      else if (dst.name !== undefined) dstRef = dst.name;
      else if (src.kind === "oci") dstRef = srcRef;
      else dstRef = parseReference(srcText).tag ?? "latest";
      const mountFrom = stringOpt(ctx.values, "mount-from");
      const op = copy(srcRef, dstRef, {
        from: from.endpoint,
        to: to.endpoint,
        signal: ctx.signal,
        ...selected,
        ...(mountFrom !== undefined ? { mountFrom } : {}),
      });
      await runTransfer(ctx, op, "copied", `${srcText} -> ${dstText}`);
    } finally {
      await endpoints.close();
    }
  },
};
