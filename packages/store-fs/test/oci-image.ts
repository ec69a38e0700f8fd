/** Builds a tiny but valid single-layer OCI image (tar+gzip layer, config, manifest). */
import { gzipSync } from "node:zlib";
import { MediaTypes, digestOf, type Descriptor, type Digest } from "@ferry/core";

/** A one-file ustar archive: header, data padded to 512, two zero blocks. */
export function tarOneFile(name: string, content: Uint8Array): Buffer {
  const header = Buffer.alloc(512);
  const put = (s: string, at: number, len: number): void => void header.write(s.slice(0, len), at, "ascii");
  const octal = (n: number, len: number): string => `${n.toString(8).padStart(len - 1, "0")}\0`;
  put(name, 0, 100);
  put(octal(0o644, 8), 100, 8);
  put(octal(0, 8), 108, 8);
  put(octal(0, 8), 116, 8);
  put(octal(content.byteLength, 12), 124, 12);
  put(octal(1_700_000_000, 12), 136, 12);
  header.fill(0x20, 148, 156); // checksum is computed with its own field as spaces
  put("0", 156, 1);
  put("ustar\u000000", 257, 8);
  let sum = 0;
  for (const b of header) sum += b;
  put(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8);
  const pad = (512 - (content.byteLength % 512)) % 512;
  return Buffer.concat([header, Buffer.from(content), Buffer.alloc(pad), Buffer.alloc(1024)]);
}

export interface TinyImage {
  manifest: { bytes: Buffer; descriptor: Descriptor };
  config: { bytes: Buffer; descriptor: Descriptor };
  layer: { bytes: Buffer; descriptor: Descriptor };
}

export function tinyImage(text = "hello from ferry\n"): TinyImage {
  const tar = tarOneFile("hello.txt", Buffer.from(text));
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
