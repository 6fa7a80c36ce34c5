import { type DmaAccess, DmaMap } from "./dma-map.js";

/** A DMA transfer that could not be done (the engine reports it as STATUS.ERROR). */
export class DmaFault extends Error {
  override name = "DmaFault";
}

/** Client memory through VFIO_USER_DMA_READ / DMA_WRITE messages (the session sends them and waits). */
export interface DmaMessenger {
  read(address: bigint, length: number): Uint8Array;
  write(address: bigint, data: Uint8Array): void;
}

/** How the server reaches client memory: `fd` maps the fds the client sent (messages where it sent none), `messages` never maps. */
export type DmaMode = "fd" | "messages";

/**
 * The device's view of client memory: DMA addresses resolved through the client's windows, each piece reached
 * through the mapped fd or with messages. Every transfer is checked whole before any byte moves.
 */
export class DmaPort {
  constructor(
    readonly map: DmaMap,
    private readonly messenger: DmaMessenger,
    private readonly mode: DmaMode,
  ) {}

  /** Why [address, address + length) cannot be accessed, or undefined when it can. */
  check(address: bigint, length: number, access: DmaAccess): string | undefined {
    const segments = this.map.resolve(address, length, access);
    return typeof segments === "string" ? segments : undefined;
  }

  read(address: bigint, length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (const s of this.segments(address, length, "read")) {
      out.set(this.mode === "fd" && s.region.file ? s.region.file.read(s.offset, s.length) : this.messenger.read(s.address, s.length), s.at);
    }
    return out;
  }

  write(address: bigint, data: Uint8Array): void {
    for (const s of this.segments(address, data.length, "write")) {
      const piece = data.subarray(s.at, s.at + s.length);
      if (this.mode === "fd" && s.region.file) s.region.file.write(s.offset, piece);
      else this.messenger.write(s.address, piece);
    }
  }

  private segments(address: bigint, length: number, access: DmaAccess) {
    const segments = this.map.resolve(address, length, access);
    if (typeof segments === "string") throw new DmaFault(segments);
    return segments;
  }
}
