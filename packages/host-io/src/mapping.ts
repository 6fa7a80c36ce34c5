import { native } from "./native.js";

const PAGE_SIZE = 4096;

export interface MapFdOptions {
  /** PROT_WRITE as well as PROT_READ (default false). The fd must be open for writing then. */
  writable?: boolean;
}

/**
 * Maps `length` bytes of the file `fd` from `offset` (a multiple of 4096) MAP_SHARED into this process: a memfd
 * another process sent (vfio-user DMA regions and BARs), or a VFIO device fd's region. Writes through the view reach
 * the file and every other mapping of it. The mapping is released when the returned view and every view of its
 * buffer are collected, so JS can never touch unmapped memory; the fd may be closed right after this call. A KVM
 * memslot built on the view must be removed before the view is dropped (keep it referenced while mapped).
 */
export function mapFd(fd: number, offset: number, length: number, options: MapFdOptions = {}): Uint8Array {
  if (!Number.isSafeInteger(offset) || offset < 0 || offset % PAGE_SIZE !== 0) {
    throw new RangeError(`mapFd offset must be a non-negative multiple of ${PAGE_SIZE}, not ${offset}`);
  }
  if (!Number.isSafeInteger(length) || length <= 0) throw new RangeError(`mapFd length must be a positive integer, not ${length}`);
  return new Uint8Array(native().mapFd(fd, offset, length, options.writable ?? false));
}

/**
 * The virtual address of `bytes[0]` in this process (VFIO_IOMMU_MAP_DMA and IOMMU_IOAS_MAP take user addresses).
 * Only meaningful while the memory stays mapped: for native memory (guest RAM, mapFd views) that is while a view
 * is referenced; a JS-heap buffer may move, so never pass one.
 */
export function bufferAddress(bytes: Uint8Array): bigint {
  return native().bufferAddress(bytes);
}

/**
 * A view of `length` bytes at `address` (page aligned), memory this process has mapped already: another thread's
 * mapping, e.g. guest RAM as the vCPUs see it (a data-plane worker then touches the same pages, including ones a
 * userfaultfd fills on first touch, where a second mapping of the file would bypass the fault handler). Nothing
 * is mapped or unmapped; the range must be mapped in full (mincore, else `HostIoError` ENOMEM). The owner of the
 * mapping must keep it mapped until no thread can use the view any more (end the worker first).
 */
export function viewMapping(address: bigint, length: number): Uint8Array {
  if (!Number.isSafeInteger(length) || length <= 0) throw new RangeError(`viewMapping length must be a positive integer, not ${length}`);
  if (typeof address !== "bigint" || address <= 0n || address % BigInt(PAGE_SIZE) !== 0n) {
    throw new RangeError(`viewMapping address must be a non-zero multiple of ${PAGE_SIZE}, not ${String(address)}`);
  }
  return new Uint8Array(native().viewMapping(address, length));
}
