import { GuestMemory } from "@vmm/core";
import type { Arm64Vm } from "@vmm/kvm-native";
import type { Arm64LoadPlan } from "../loader/load-plan.js";
import type { NamedRange } from "../ranges.js";

// Guest RAM and what is in it at boot: one memfd-backed memslot at the memory map's RAM base, and the kernel,
// initrd and devicetree copied where the load plan put them.

/** RAM's memslot; the slots above it are the memory mapper's (RAM-backed BARs). */
export const RAM_SLOT = 0;
export const FIRST_DEVICE_SLOT = RAM_SLOT + 1;

/** Backs `ram` with guest memory (one shared memfd mapping, one memslot) and returns JS's view of it. */
export function backRam(vm: Pick<Arm64Vm, "allocateRam" | "setMemoryRegion">, ram: NamedRange): GuestMemory {
  const block = vm.allocateRam(ram.size);
  vm.setMemoryRegion({ slot: RAM_SLOT, guestPhysAddr: ram.base, memory: block });
  return new GuestMemory(block.regions(ram.base));
}

/** The boot files in RAM: the Image, the initrd (when the plan has one) and the DTB, at the planned addresses. */
export function copyBootFiles(memory: GuestMemory, plan: Arm64LoadPlan, dtb: Uint8Array, initrd?: Uint8Array): void {
  memory.write(plan.kernel.gpa, plan.kernel.bytes);
  if (plan.initrd && initrd) memory.write(plan.initrd.base, initrd);
  memory.write(plan.dtb.base, dtb);
}
