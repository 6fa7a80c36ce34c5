// The system calls kernel VFIO needs, behind one interface so the backend's sequences (open, map, IRQs, reset) are
// tested with a fake and run for real through @vmm/host-io and node:fs. No policy here.
import { closeSync, constants, openSync, readSync, writeSync } from "node:fs";
import { bufferAddress, ioctl, ioctlValue } from "@vmm/host-io";

export interface VfioSyscalls {
  /** open(path, O_RDWR | O_CLOEXEC); throws an error with `code` or `errno` ("EACCES"). */
  open(path: string): number;
  close(fd: number): void;
  /** ioctl with a pointer to `buffer`; the kernel may write it. Returns the ioctl's result (>= 0). */
  ioctl(fd: number, request: number, buffer: Uint8Array): number;
  /** ioctl with an integer argument. */
  ioctlValue(fd: number, request: number, value: number): number;
  /** pread: bytes read (0 at the end). */
  pread(fd: number, buffer: Uint8Array, position: number): number;
  /** pwrite: bytes written. */
  pwrite(fd: number, data: Uint8Array, position: number): number;
  /** The process address of `bytes[0]` (guest RAM is native memory that does not move). */
  bufferAddress(bytes: Uint8Array): bigint;
}

/** The real calls. Node opens every file close-on-exec. */
export const hostSyscalls: VfioSyscalls = {
  open: (path) => openSync(path, constants.O_RDWR),
  close: (fd) => closeSync(fd),
  ioctl: (fd, request, buffer) => ioctl(fd, request, buffer),
  ioctlValue: (fd, request, value) => ioctlValue(fd, request, value),
  pread: (fd, buffer, position) => readSync(fd, buffer, 0, buffer.length, position),
  pwrite: (fd, data, position) => writeSync(fd, data, 0, data.length, position),
  bufferAddress: (bytes) => bufferAddress(bytes),
};

/** The symbolic errno of a failed call ("EBUSY"): HostIoError's `errno`, node:fs's `code`. */
export function errnoOf(error: unknown): string | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const { errno, code } = error as { errno?: unknown; code?: unknown };
  if (typeof errno === "string") return errno;
  return typeof code === "string" ? code : undefined;
}
