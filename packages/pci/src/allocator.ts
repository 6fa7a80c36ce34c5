import { ConfigurationError, type BarKind } from "@vmm/core";

export interface AddressWindow {
  readonly base: number;
  readonly size: number;
}

/** The windows a machine gives the bus for BARs. mem64 is optional: 64-bit BARs fall back to mem32 without it. */
export interface PciWindows {
  readonly io: AddressWindow;
  readonly mem32: AddressWindow;
  readonly mem64?: AddressWindow;
}

/** A bump allocator inside one window; every allocation is aligned to its (power-of-two) size. */
export class WindowAllocator {
  private next: number;

  constructor(
    readonly name: string,
    readonly window: AddressWindow,
  ) {
    this.next = window.base;
  }

  allocate(size: number, owner: string): number {
    const at = Math.ceil(this.next / size) * size;
    if (at + size > this.window.base + this.window.size) {
      throw new ConfigurationError(
        `${owner}: the ${this.name} window [0x${this.window.base.toString(16)}, +0x${this.window.size.toString(16)}) ` +
          `has no room for 0x${size.toString(16)} bytes`,
      );
    }
    this.next = at + size;
    return at;
  }

  /** Bytes handed out so far (including alignment padding). */
  get used(): number {
    return this.next - this.window.base;
  }
}

/** Picks the window for each BAR kind and allocates from it. */
export class BarAllocator {
  private readonly io: WindowAllocator;
  private readonly mem32: WindowAllocator;
  private readonly mem64: WindowAllocator | undefined;

  constructor(windows: PciWindows) {
    checkWindow("io", windows.io, 0x1_0000);
    checkWindow("mem32", windows.mem32, 2 ** 32);
    if (windows.mem64 && windows.mem64.size > 0) checkWindow("mem64", windows.mem64, 2 ** 52);
    this.io = new WindowAllocator("I/O", windows.io);
    this.mem32 = new WindowAllocator("32-bit MMIO", windows.mem32);
    this.mem64 = windows.mem64 && windows.mem64.size > 0 ? new WindowAllocator("64-bit MMIO", windows.mem64) : undefined;
  }

  /** Whether there is a 64-bit window (else 64-bit BARs fall back to the 32-bit one). */
  get hasMem64(): boolean {
    return this.mem64 !== undefined;
  }

  allocate(kind: BarKind, size: number, owner: string): number {
    if (kind === "io") return this.io.allocate(size, owner);
    if (kind === "mem64" && this.mem64) return this.mem64.allocate(size, owner);
    return this.mem32.allocate(size, owner);
  }
}

function checkWindow(name: string, w: AddressWindow, limit: number): void {
  if (!Number.isSafeInteger(w.base) || !Number.isSafeInteger(w.size) || w.base < 0 || w.size < 0 || w.base + w.size > limit) {
    throw new ConfigurationError(`PCI ${name} window [0x${w.base.toString(16)}, +0x${w.size.toString(16)}) is invalid`);
  }
}
