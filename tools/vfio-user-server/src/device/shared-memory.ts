import { closeSync, ftruncateSync } from "node:fs";
import { mapFd, memfdCreate } from "@vmm/host-io";
import type { SharedMemory } from "./region.js";

/** Makes the memory behind a region: shared (a memfd) for mmappable ones. */
export type MemoryFactory = (name: string, size: number) => SharedMemory;

/**
 * A memfd of `size` bytes, mapped here: what the client writes through its own mapping of the fd the server reads
 * in `bytes`, and the other way round.
 */
export const memfdMemory: MemoryFactory = (name, size) => {
  const fd = memfdCreate(`vfio-user-server:${name}`);
  try {
    ftruncateSync(fd, size);
    const bytes = mapFd(fd, 0, size, { writable: true });
    let open = true;
    return {
      bytes,
      fd,
      close: () => {
        if (open) closeSync(fd);
        open = false;
      },
    };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
};
