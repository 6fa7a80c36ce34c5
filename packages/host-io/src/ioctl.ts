import { native } from "./native.js";

/**
 * ioctl(2) with a pointer to `buffer` (the structure, encoded and decoded by the caller; the kernel may write
 * it). Returns the ioctl's non-negative result; a failure throws HostIoError with the errno (EINTR is retried).
 * The structure layouts live in TypeScript (kernel VFIO, iommufd); this only carries the pointer.
 */
export function ioctl(fd: number, request: number, buffer: Uint8Array): number {
  assertRequest(request);
  return native().ioctl(fd, request, buffer);
}

/** ioctl(2) with an integer argument (VFIO_GROUP_SET_CONTAINER takes a pointer to int: use `ioctl` for that). */
export function ioctlValue(fd: number, request: number, value: number | bigint = 0): number {
  assertRequest(request);
  return native().ioctlValue(fd, request, value);
}

function assertRequest(request: number): void {
  if (!Number.isInteger(request) || request < 0 || request > 0xffffffff) {
    throw new RangeError(`an ioctl request is a 32-bit unsigned number, not ${request}`);
  }
}
