import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { requireTools, skopeo } from "@ferry/testkit";
import { runCli, seedImage, type SeededImage, useRegistry } from "./helpers.ts";

describe.runIf(requireTools("skopeo"))("stores ferry writes are skopeo's layouts and back", () => {
  const env = useRegistry();
  let img: SeededImage;
  beforeAll(async () => {
    img = await seedImage(env.reg.host, "interop/app:1", join(env.tmp.dir, "layout"), { layers: 2, layerSize: 100_000, platforms: ["linux/amd64", "linux/arm64"] });
  });

  it("skopeo reads what ferry pull wrote; ferry copies what skopeo wrote", async () => {
    const store = join(env.tmp.dir, "store");
    expect((await runCli(["pull", img.reference, "--all-platforms", "--name", "app", "--store", store, "-q"])).code).toBe(0);
    const raw = await skopeo(["inspect", "--raw", `oci:${store}:app`]);
    expect(JSON.parse(raw).manifests).toHaveLength(2);

    const fromSkopeo = join(env.tmp.dir, "skopeo-layout");
    await skopeo(["copy", "--all", "--preserve-digests", "--src-tls-verify=false", `docker://${img.reference}`, `oci:${fromSkopeo}:s1`]);
    const back = await runCli(["copy", `oci:${fromSkopeo}:s1`, `${env.reg.host}/interop/again:1`, "-q"]);
    expect(back.code, back.stderr).toBe(0);
    expect(back.stdout).toBe(`${img.root.digest}\n`);
  });
});
