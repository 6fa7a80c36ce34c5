import { ConfigurationError, type MappedRegion, type MemoryMapper } from "@vmm/core";

/** What the mapper needs from the VM: page-aligned memory and memslots. */
export interface MemslotVm {
  allocateMemory(size: number): Uint8Array;
  setMemoryRegion(region: { slot: number; guestPhysAddr: number; memory: Uint8Array; readonly?: boolean; logDirty?: boolean }): void;
  removeMemoryRegion(slot: number): void;
  getDirtyLog(slot: number): Uint8Array;
}

const PAGE = 4096;

/** RAM-backed guest mappings (BARs backed by memory) as KVM memslots; slots from `firstSlot` upwards. */
export class KvmMemoryMapper implements MemoryMapper {
  private readonly free: number[] = [];
  private next: number;

  constructor(
    private readonly vm: MemslotVm,
    firstSlot: number,
    private readonly maxSlots = 509,
  ) {
    this.next = firstSlot;
  }

  allocate(size: number): Uint8Array {
    if (!Number.isSafeInteger(size) || size <= 0 || size % PAGE) throw new ConfigurationError(`mapping size ${size} is not a positive multiple of 4 KiB`);
    return this.vm.allocateMemory(size);
  }

  map(gpa: number, bytes: Uint8Array, options: { readonly?: boolean; dirtyLog?: boolean } = {}): MappedRegion {
    if (!Number.isSafeInteger(gpa) || gpa % PAGE || bytes.length === 0 || bytes.length % PAGE) {
      throw new ConfigurationError(`mapping at 0x${gpa.toString(16)} (+0x${bytes.length.toString(16)}) is not page-aligned`);
    }
    const slot = this.free.pop() ?? this.next++;
    if (slot >= this.maxSlots) throw new ConfigurationError("out of KVM memory slots");
    this.vm.setMemoryRegion({ slot, guestPhysAddr: gpa, memory: bytes, readonly: options.readonly, logDirty: options.dirtyLog });
    let removed = false;
    return {
      gpa,
      size: bytes.length,
      remove: () => {
        if (removed) return;
        removed = true;
        this.vm.removeMemoryRegion(slot);
        this.free.push(slot);
      },
      dirtyPages: options.dirtyLog ? () => this.vm.getDirtyLog(slot) : undefined,
    };
  }
}
