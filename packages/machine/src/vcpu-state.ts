import { MpState, type Regs, type SegmentState, type Sregs } from "@vmm/kvm-native";

/**
 * One vCPU's registers as text, grouped the way `lkvm debug` prints them (what `vmm debug` shows): every value a
 * 0x-hex string, so that 64-bit values survive JSON exactly.
 */
export interface VcpuState {
  readonly id: number;
  /** KVM's MP state: runnable, halted, uninitialized, init-received, sipi-received (or the number). */
  readonly mpState: string;
  readonly groups: ReadonlyArray<{ readonly name: string; readonly values: Readonly<Record<string, string>> }>;
}

const hex = (n: number | bigint) => `0x${n.toString(16)}`;
const MP_STATE_NAMES = new Map<number, string>(Object.entries(MpState).map(([name, value]) => [value, name.toLowerCase().replace(/_/g, "-")]));
const GENERAL = ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip", "rflags"] as const;
const SEGMENTS = ["cs", "ss", "ds", "es", "fs", "gs", "tr", "ldt"] as const;
const CONTROL = ["cr0", "cr2", "cr3", "cr4", "cr8", "efer", "apicBase"] as const;

/** A segment in one value: selector, base, limit and the attribute bits that say its mode. */
function segment(s: SegmentState): string {
  return `sel=${hex(s.selector)} base=${hex(s.base)} limit=${hex(s.limit)} type=${s.type} dpl=${s.dpl} p=${s.present} s=${s.s} l=${s.l} db=${s.db} g=${s.g}`;
}

/** The registers KVM_GET_REGS and KVM_GET_SREGS gave for a vCPU, as VcpuState. */
export function describeVcpu(id: number, mpState: number, regs: Regs, sregs: Sregs): VcpuState {
  return {
    id,
    mpState: MP_STATE_NAMES.get(mpState) ?? String(mpState),
    groups: [
      { name: "registers", values: Object.fromEntries(GENERAL.map((r) => [r, hex(regs[r])])) },
      { name: "segments", values: Object.fromEntries(SEGMENTS.map((s) => [s, segment(sregs[s])])) },
      { name: "tables", values: { gdt: `base=${hex(sregs.gdt.base)} limit=${hex(sregs.gdt.limit)}`, idt: `base=${hex(sregs.idt.base)} limit=${hex(sregs.idt.limit)}` } },
      { name: "control", values: Object.fromEntries(CONTROL.map((c) => [c, hex(sregs[c])])) },
    ],
  };
}
