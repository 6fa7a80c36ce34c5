import { GuestError } from "@vmm/core";

/**
 * The driver broke the virtqueue rules (a malformed descriptor chain, a ring outside RAM, an avail index that
 * jumped). The queue cannot be trusted any more: the transport sets DEVICE_NEEDS_RESET.
 */
export class VirtqueueError extends GuestError {
  constructor(
    readonly queue: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`virtqueue ${queue}: ${message}`, "EVIRTQUEUE", options);
  }
}
