import { native } from "./native.js";

export interface MemfdOptions {
  /** MFD_ALLOW_SEALING: F_ADD_SEALS may seal the file later (default false: sealing refused, F_SEAL_SEAL). */
  allowSealing?: boolean;
}

/**
 * An anonymous memory file (memfd_create, close-on-exec), size 0: size it with `fs.ftruncateSync(fd, bytes)`.
 * Its fd can be passed to another process with `sendFds`, which then maps the same pages (vfio-user shares guest
 * memory this way). `name` only labels it in /proc/PID/fd ("memfd:NAME"). Close it with `fs.closeSync`.
 */
export function memfdCreate(name: string, options: MemfdOptions = {}): number {
  return native().memfdCreate(name, options.allowSealing ?? false);
}
