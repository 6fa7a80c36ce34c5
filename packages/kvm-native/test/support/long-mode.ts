// A 64-bit CPL0 guest entered directly by the VMM: identity-mapped 4 GiB (2 MiB pages), flat GDT,
// code linked and loaded at 0x1000 (tables: support/paging.ts).
import { Kvm } from "../../src/index.js";
import { assemble } from "./assemble.js";
import { CODE, type TestVm } from "./guest.js";
import { enterLongMode, writePaging } from "./paging.js";

export function longModeVm(source: string, opts: { irqchip?: boolean; ramSize?: number } = {}): TestVm {
  const kvm = Kvm.open();
  const vm = kvm.createVm();
  const ram = vm.allocateMemory(opts.ramSize ?? 0x200000);
  vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0, memory: ram });
  if (opts.irqchip) vm.createIrqchip();

  writePaging(ram);
  ram.set(assemble(`.code64\n${source}`, CODE), CODE);

  const vcpu = vm.createVcpu(0);
  vcpu.setCpuid(kvm.supportedCpuid());
  enterLongMode(vcpu, CODE);
  return { kvm, vm, vcpu, ram, close: () => { vm.close(); kvm.close(); } };
}
