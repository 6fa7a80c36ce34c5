import { native } from "./native.js";

export type FileLockMode = "shared" | "exclusive" | "unlock";

/**
 * Takes (or drops) an advisory open-file-description lock on the whole file (fcntl F_OFD_SETLK): shared for
 * readers, exclusive for a writer. Returns false when another open file description holds a conflicting lock,
 * in this process or another. The lock goes away when the last fd of this open is closed.
 */
export function lockFile(fd: number, mode: FileLockMode): boolean {
  return native().lockFile(fd, mode);
}

/** The size in bytes of the block device open on `fd` (BLKGETSIZE64); stat() reports 0 for one. */
export function blockDeviceSize(fd: number): number {
  return native().blockDeviceSize(fd);
}
