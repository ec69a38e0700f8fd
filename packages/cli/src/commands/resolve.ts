import { insecureHelp, perHostHelp, registryFlags, userHelp, registryOptions, type Command } from "../command.ts";
import { Endpoints } from "../endpoint.ts";
import { write } from "../io.ts";

export const resolveCommand: Command = {
  name: "resolve",
  summary: "print the descriptor a reference points to (JSON)",
  usage: "resolve REF",
  description: "Resolves REF (a registry reference or oci:DIR[:NAME]) and prints its descriptor as one line of JSON.",
  options: { ...registryOptions },
  optionHelp: [insecureHelp, userHelp, perHostHelp],
  minArgs: 1,
  maxArgs: 1,
  async run(ctx) {
    const ref = ctx.positionals[0] as string;
    const endpoints = new Endpoints(registryFlags(ctx.values));
    try {
      const { resolver, ref: name } = await endpoints.source(ref, ctx.io.cwd);
      const resolved = await resolver.resolve(name, { signal: ctx.signal });
      await write(ctx.io.stdout, ctx.flags.quiet ? `${resolved.descriptor.digest}\n` : `${JSON.stringify(resolved.descriptor)}\n`);
    } finally {
      await endpoints.close();
    }
  },
};
