// A 64-bit CPL0 guest entered directly by the VMM: identity-mapped 4 GiB (2 MiB pages), flat GDT,
// code linked and loaded at 0x1000. Layout: GDT 0x500, PML4 0x9000, PDPT 0xa000, PDs 0xb000-0xefff.
import { Kvm, type Segment } from "../../src/index.js";
import { assemble } from "./assemble.js";
import { CODE, type TestVm } from "./guest.js";

const GDT = 0x500;
const PML4 = 0x9000;
const PDPT = 0xa000;
const PD = 0xb000;

function writeU64(ram: Uint8Array, off: number, v: bigint): void {
  new DataView(ram.buffer, ram.byteOffset).setBigUint64(off, v, true);
}

export function longModeVm(source: string, opts: { irqchip?: boolean; ramSize?: number } = {}): TestVm {
  const kvm = Kvm.open();
  const vm = kvm.createVm();
  const ram = vm.allocateMemory(opts.ramSize ?? 0x200000);
  vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0, memory: ram });
  if (opts.irqchip) vm.createIrqchip();

  writeU64(ram, GDT + 8, 0x00af9a000000ffffn); // 0x08: 64-bit code
  writeU64(ram, GDT + 16, 0x00cf92000000ffffn); // 0x10: data
  writeU64(ram, PML4, BigInt(PDPT | 3));
  for (let i = 0; i < 4; i++) {
    writeU64(ram, PDPT + i * 8, BigInt((PD + i * 0x1000) | 3));
    for (let j = 0; j < 512; j++) writeU64(ram, PD + i * 0x1000 + j * 8, (BigInt(i * 512 + j) << 21n) | 0x83n);
  }
  ram.set(assemble(`.code64\n${source}`, CODE), CODE);

  const vcpu = vm.createVcpu(0);
  vcpu.setCpuid(kvm.supportedCpuid());
  const flat = { base: 0, limit: 0xffffffff, present: 1, dpl: 0, s: 1, g: 1, avl: 0, unusable: 0 };
  const code: Segment = { ...flat, selector: 0x08, type: 11, db: 0, l: 1 };
  const data: Segment = { ...flat, selector: 0x10, type: 3, db: 1, l: 0 };
  const tr: Segment = { ...flat, selector: 0, type: 11, s: 0, db: 0, l: 0, g: 0, limit: 0x67 };
  vcpu.setSregs({
    cs: code, ds: data, es: data, fs: data, gs: data, ss: data, tr,
    gdt: { base: GDT, limit: 23 },
    cr0: 0x80000011, cr3: PML4, cr4: 0x20, efer: 0x500,
  });
  vcpu.setRegs({ rip: CODE, rflags: 2, rsp: 0x80000 });
  return { kvm, vm, vcpu, ram, close: () => { vm.close(); kvm.close(); } };
}
