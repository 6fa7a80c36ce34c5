// Guest RAM and disks backed by memfds, as the machine backs RAM: what a data-plane worker needs to map the same
// pages. Both are real shared mappings, so what the worker writes shows up in the views the test reads.
import { closeSync, ftruncateSync } from "node:fs";
import { GuestMemory } from "@vmm/core";
import { mapFd, memfdCreate } from "@vmm/host-io";
import { MemoryBlockBackend } from "../src/backends/block.js";
import { RAM_BASE } from "./driver.js";

const open: number[] = [];

function memfdBytes(name: string, size: number): { fd: number; bytes: Uint8Array } {
  const fd = memfdCreate(name);
  open.push(fd);
  ftruncateSync(fd, Math.ceil(size / 4096) * 4096);
  return { fd, bytes: mapFd(fd, 0, size, { writable: true }) };
}

/** `size` bytes of guest RAM at `gpa`, on a memfd (a worker maps the same pages). */
export function makeMemfdMemory(size = 4 << 20, gpa = RAM_BASE): GuestMemory {
  const { fd, bytes } = memfdBytes("test-ram", size);
  return new GuestMemory([{ gpa, bytes, file: { fd, offset: 0 } }]);
}

/** A disk whose bytes are a memfd: the JS thread reads `bytes`, a worker preads/pwrites `fd`. */
export class MemfdBlockBackend extends MemoryBlockBackend {
  readonly fd: number;
  constructor(initial: Uint8Array, readonly = false) {
    const { fd, bytes } = memfdBytes("test-disk", initial.length);
    bytes.set(initial);
    super(bytes, readonly);
    this.fd = fd;
  }
}

/** Closes the memfds made so far (their mappings stay valid until collected). */
export function closeMemfds(): void {
  for (const fd of open.splice(0)) closeSync(fd);
}
