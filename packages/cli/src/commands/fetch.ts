import { pipeline } from "node:stream/promises";
import {
  isIndexMediaType,
  NotFoundError,
  parseDigest,
  parseManifest,
  selectManifests,
  type Descriptor,
} from "@ferry/core";
import { parseReference } from "@ferry/fetcher";
import { insecureHelp, parseCount, perHostHelp, registryFlags, userHelp, registryOptions, stringOpt, type Command } from "../command.ts";
import { Endpoints } from "../endpoint.ts";
import { findInGraph, readSmall } from "../graph.ts";

export const fetchCommand: Command = {
  name: "fetch",
  summary: "write a manifest or blob to stdout (streaming, verified)",
  usage: "fetch REF [DIGEST] [--platform P] [--size N [--media-type T]]",
  description:
    "Without DIGEST writes the manifest (or index) REF points to; with --platform and an index, the matching\n" +
    "platform's manifest. With DIGEST writes that blob of REF's repository: its size and media type are found by\n" +
    "walking REF's graph, or taken from --size/--media-type (then no walk is needed). Bytes are verified against\n" +
    "the digest while streaming; a mismatch fails the command (exit 1) after the bytes were written.",
  options: { ...registryOptions, platform: { type: "string" }, size: { type: "string" }, "media-type": { type: "string" } },
  optionHelp: [
    ["--platform os/arch[/variant]", "pick this platform's manifest when REF is an index"],
    ["--size N", "size of DIGEST in bytes (skips the graph walk)"],
    ["--media-type T", "media type of DIGEST with --size; default application/octet-stream"],
    insecureHelp,
    userHelp,
    perHostHelp,
  ],
  minArgs: 1,
  maxArgs: 2,
  async run(ctx) {
    const [ref, digestText] = ctx.positionals as [string, string | undefined];
    const { signal } = ctx;
    const endpoints = new Endpoints(registryFlags(ctx.values));
    try {
      const { resolver, target, ref: name } = await endpoints.source(ref, ctx.io.cwd);
      const sizeText = stringOpt(ctx.values, "size");

      let desc: Descriptor;
      let repository: string;
      if (digestText !== undefined && sizeText !== undefined) {
        // Everything is known: no round trip to resolve or walk.
        const size = parseCount(sizeText, "--size", 0, Number.MAX_SAFE_INTEGER);
        desc = { mediaType: stringOpt(ctx.values, "media-type") ?? "application/octet-stream", digest: parseDigest(digestText), size };
        repository = target.kind === "oci" ? name : parseReference(ref).name;
      } else {
        const resolved = await resolver.resolve(name, { signal });
        repository = resolved.name;
        desc = resolved.descriptor;
        if (digestText !== undefined) {
          const wanted = parseDigest(digestText);
          const found = await findInGraph(await resolver.fetcher(repository), desc, wanted, signal);
          if (!found) throw new NotFoundError(`${wanted} is not part of ${ref}`, { details: { digest: wanted, reference: ref } });
          desc = found;
        } else {
          const platform = stringOpt(ctx.values, "platform");
          if (platform !== undefined && isIndexMediaType(desc.mediaType)) {
            const bytes = await readSmall(await resolver.fetcher(repository), desc, signal);
            const parsed = parseManifest(bytes, { mediaType: desc.mediaType });
            const picked = parsed.kind === "index" ? selectManifests(parsed.index.manifests, platform)[0] : undefined;
            if (!picked) throw new NotFoundError(`${ref} has no manifest for platform ${platform}`, { details: { platform } });
            desc = picked;
          }
        }
      }
      const fetcher = await resolver.fetcher(repository);
      // end: false — stdout belongs to the process, not to this command.
      await pipeline(await fetcher.fetch(desc, { signal }), ctx.io.stdout, { end: false, signal });
    } finally {
      await endpoints.close();
    }
  },
};
