import { VmmError } from "@vmm/core";

/**
 * Bytes that claim to be a linux/vfio.h structure but cannot be one: too short, an argsz smaller than the
 * structure, a capability chain that loops or points outside the buffer, a count that runs past the end. They come
 * from the kernel or from a vfio-user server that may be hostile, so they are refused, never trusted.
 */
export class VfioDecodeError extends VmmError {
  constructor(message: string) {
    super("EVFIODECODE", message);
  }
}
