import { closeSync, readlinkSync, writeSync } from "node:fs";
import type { EventFdOps } from "./irq-state.js";

const ONE = new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0]);

/** Eventfds as Linux has them: signalled by writing an 8-byte little-endian 1, recognised by their /proc link. */
export const linuxEventFds: EventFdOps = {
  signal(fd: number): void {
    try {
      writeSync(fd, ONE);
    } catch (e) {
      // EAGAIN: the counter is saturated, the reader has a signal pending anyway.
      if ((e as NodeJS.ErrnoException).code !== "EAGAIN") throw e;
    }
  },
  isEventFd(fd: number): boolean {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === "anon_inode:[eventfd]";
    } catch {
      return false;
    }
  },
  close(fd: number): void {
    try {
      closeSync(fd);
    } catch {
      // Already closed: nothing to release.
    }
  },
};
