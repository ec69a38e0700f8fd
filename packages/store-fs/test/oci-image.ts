/** Builds a tiny but valid single-layer OCI image (tar+gzip layer, config, manifest). */
import { gzipSync } from "node:zlib";
import { MediaTypes, digestOf, type Descriptor, type Digest } from "@ferry/core";
import { tarHeader } from "@ferry/testkit";

/** A one-file tar archive held in memory: testkit's ustar header, data padded to 512, two zero blocks. */
function tarBytes(name: string, content: Uint8Array): Buffer {
  const pad = (512 - (content.byteLength % 512)) % 512;
  return Buffer.concat([tarHeader(name, content.byteLength), Buffer.from(content), Buffer.alloc(pad + 1024)]);
}

export interface TinyImage {
  manifest: { bytes: Buffer; descriptor: Descriptor };
  config: { bytes: Buffer; descriptor: Descriptor };
  layer: { bytes: Buffer; descriptor: Descriptor };
}

export function tinyImage(text = "hello from ferry\n"): TinyImage {
  const tar = tarBytes("hello.txt", Buffer.from(text));
  const layerBytes = gzipSync(tar);
  const layer: Descriptor = { mediaType: MediaTypes.OciLayerGzip, digest: digestOf(layerBytes), size: layerBytes.byteLength };
  const configBytes = Buffer.from(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      config: { Cmd: ["/bin/true"] },
      rootfs: { type: "layers", diff_ids: [digestOf(tar) as Digest] },
      history: [{ created_by: "ferry store-fs test" }],
    }),
  );
  const config: Descriptor = { mediaType: MediaTypes.OciConfig, digest: digestOf(configBytes), size: configBytes.byteLength };
  const manifestBytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.OciManifest, config, layers: [layer] }));
  const manifest: Descriptor = { mediaType: MediaTypes.OciManifest, digest: digestOf(manifestBytes), size: manifestBytes.byteLength };
  return { manifest: { bytes: manifestBytes, descriptor: manifest }, config: { bytes: configBytes, descriptor: config }, layer: { bytes: layerBytes, descriptor: layer } };
}
