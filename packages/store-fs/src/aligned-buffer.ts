/**
 * Memory for O_DIRECT writes. The kernel rejects a direct write (EINVAL) unless its memory,
 * file offset and length are aligned to the device's block size. Node offers no aligned
 * allocation (a 1 MiB Buffer typically starts 16 bytes past a page boundary), but a WebAssembly
 * memory always starts on a page boundary: V8 maps it with its page allocator.
 */

/** Offsets and lengths of direct writes are multiples of this (the page size; covers 512 and 4096-byte blocks). */
export const DIRECT_ALIGN = 4096;

const WASM_PAGE = 64 * 1024;

// The project's lib setting (ES2023, no DOM) does not declare WebAssembly; Node always has it.
declare const WebAssembly: {
  Memory: new (descriptor: { initial: number; maximum?: number; shared?: boolean }) => { buffer: ArrayBuffer | SharedArrayBuffer };
};

/**
 * A page-aligned buffer of `size` bytes (a multiple of {@link DIRECT_ALIGN}) starting at byte 0
 * of its memory; `shared` makes that memory a SharedArrayBuffer, for batches a worker reads too.
 */
export function alignedBuffer(size: number, shared = false): Buffer {
  const pages = Math.max(1, Math.ceil(size / WASM_PAGE));
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared });
  return Buffer.from(memory.buffer, 0, size);
}

/** `n` rounded up to a multiple of {@link DIRECT_ALIGN}. */
export function alignUp(n: number): number {
  return Math.ceil(n / DIRECT_ALIGN) * DIRECT_ALIGN;
}

/** True when `chunk` already sits at `at` in `buf`: it was read into a lent `window()`. */
export function inPlace(chunk: Uint8Array, buf: Uint8Array, at: number): boolean {
  return chunk.buffer === buf.buffer && chunk.byteOffset === buf.byteOffset + at;
}
