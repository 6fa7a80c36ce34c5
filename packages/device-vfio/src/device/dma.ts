// Guest RAM made reachable by the device's DMA: every RAM region mapped at its guest-physical address (no
// vIOMMU: the device is programmed with guest-physical addresses). A host range the device cannot reach (an IOMMU
// reserved region such as the MSI doorbell window, a root complex's own config window as on Juno, or what a
// vfio-user server says it cannot map) must not overlap guest RAM: the device would DMA into that RAM and hit
// the host's range instead, so the device is refused up front with both ranges named.
import { ConfigurationError, type GuestMemory } from "@vmm/core";
import type { VfioBackend, VfioReservedRange } from "../backend/backend.js";
import { range } from "./bytes.js";

export interface DmaMapping {
  readonly iova: number;
  readonly size: number;
}

/** The first overlap of guest RAM with a reserved range, as one line; undefined when there is none. */
export function reservedOverlap(memory: GuestMemory, reserved: readonly VfioReservedRange[]): string | undefined {
  for (const ram of memory.list()) {
    const end = ram.gpa + ram.bytes.length - 1;
    for (const r of reserved) {
      if (r.start <= end && ram.gpa <= r.end) {
        return `guest RAM ${range(ram.gpa, end)} overlaps the host's reserved range ${range(r.start, r.end)} (${r.type})`;
      }
    }
  }
  return undefined;
}

/** Checks the reserved ranges, then maps every RAM region for DMA; on a failure nothing stays mapped. */
export function mapGuestMemory(name: string, backend: VfioBackend, memory: GuestMemory): DmaMapping[] {
  const clash = reservedOverlap(memory, backend.reservedRanges());
  if (clash) throw new ConfigurationError(`${name}: ${clash}: the device cannot reach that RAM by DMA`);
  const done: DmaMapping[] = [];
  for (const ram of memory.list()) {
    try {
      backend.dmaMap({
        iova: ram.gpa,
        size: ram.bytes.length,
        fd: ram.file?.fd ?? -1,
        fileOffset: ram.file?.offset ?? 0,
        bytes: ram.bytes,
        readable: true,
        writable: true,
      });
      done.push({ iova: ram.gpa, size: ram.bytes.length });
    } catch (e) {
      unmapGuestMemory(backend, done);
      const end = ram.gpa + ram.bytes.length - 1;
      throw new ConfigurationError(`${name}: guest RAM ${range(ram.gpa, end)} cannot be mapped for the device's DMA: ${(e as Error).message}`, { cause: e });
    }
  }
  return done;
}

/** Unmaps what `mapGuestMemory` mapped (best effort: the backend may already be gone). */
export function unmapGuestMemory(backend: VfioBackend, mappings: readonly DmaMapping[]): void {
  for (const m of mappings) {
    try {
      backend.dmaUnmap(m.iova, m.size);
    } catch {
      // A lost backend has no mappings left to remove.
    }
  }
}
