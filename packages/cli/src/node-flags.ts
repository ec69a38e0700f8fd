/**
 * The V8 settings of the `ferry` process, in one place: the executable's shebang passes
 * {@link FERRY_NODE_FLAGS} (a test keeps the two equal) and the benchmark starts its measured
 * ferry process with them, so it measures the process users run.
 *
 * `--max-semi-space-size=4` (MiB): V8's young generation grows to 3 × 16 MiB of garbage by
 * default; 4 cut 1000 small blobs' peak RSS from 116–118 MB to 90 MB at the same CPU, where 1
 * cost up to 10 % more CPU (more scavenges) for 102 MB (bench/README.md, "Memory").
 * The other setting, WebAssembly on the baseline compiler, can be made at run time and is
 * applied by the CLI's entry: see `useBaselineWasm` in @ferry/fetcher.
 */
export const FERRY_NODE_FLAGS: readonly string[] = ["--max-semi-space-size=4"];
