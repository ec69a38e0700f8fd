import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireTools, skopeo } from "@ferry/testkit";
import { runCli, seedImage, startLocalRegistry, tempDir, type LocalRegistry, type SeededImage } from "./helpers.ts";

describe.runIf(requireTools("skopeo"))("stores ferry writes are skopeo's layouts and back", () => {
  let reg: LocalRegistry;
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let img: SeededImage;
  beforeAll(async () => {
    reg = await startLocalRegistry();
    tmp = await tempDir();
    img = await seedImage(reg.host, "interop/app:1", join(tmp.dir, "layout"), { layers: 2, layerSize: 100_000, platforms: ["linux/amd64", "linux/arm64"] });
  });
  afterAll(async () => {
    await reg.stop();
    await tmp.remove();
  });

  it("skopeo reads what ferry pull wrote; ferry copies what skopeo wrote", async () => {
    const store = join(tmp.dir, "store");
    expect((await runCli(["pull", img.reference, "--all-platforms", "--name", "app", "--store", store, "-q"])).code).toBe(0);
    const raw = await skopeo(["inspect", "--raw", `oci:${store}:app`]);
    expect(JSON.parse(raw).manifests).toHaveLength(2);

    const fromSkopeo = join(tmp.dir, "skopeo-layout");
    await skopeo(["copy", "--all", "--preserve-digests", "--src-tls-verify=false", `docker://${img.reference}`, `oci:${fromSkopeo}:s1`]);
    const back = await runCli(["copy", `oci:${fromSkopeo}:s1`, `${reg.host}/interop/again:1`, "-q"]);
    expect(back.code, back.stderr).toBe(0);
    expect(back.stdout).toBe(`${img.root.digest}\n`);
  });
});
