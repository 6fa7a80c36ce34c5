import type { Regs, SegmentState, Sregs } from "@vmm/kvm-native";
import { describe, expect, it } from "vitest";
import { describeVcpu } from "../src/vcpu-state.js";

const seg = (selector: number, l: number): SegmentState => ({ base: 0n, limit: 0xffffffff, selector, type: 11, present: 1, dpl: 0, db: 0, s: 1, l, g: 1, avl: 0 });

describe("describeVcpu", () => {
  it("gives every register as exact hex, grouped, with the MP state's name", () => {
    const regs = Object.fromEntries(["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"].map((r, i) => [r, BigInt(i)])) as unknown as Regs;
    regs.rip = 0xffff_ffff_8100_0000n;
    regs.rflags = 0x202;
    const sregs = {
      cs: seg(0x10, 1), ss: seg(0x18, 0), ds: seg(0x18, 0), es: seg(0x18, 0), fs: seg(0, 0), gs: seg(0, 0), tr: seg(0, 0), ldt: seg(0, 0),
      gdt: { base: 0x500n, limit: 0x1f }, idt: { base: 0n, limit: 0xffff },
      cr0: 0x80050033n, cr2: 0n, cr3: 0x9000n, cr4: 0x20n, cr8: 0n, efer: 0x500n, apicBase: 0xfee00900n, interruptBitmap: [0n, 0n, 0n, 0n],
    } as Sregs;
    const state = describeVcpu(1, 3, regs, sregs);
    expect(state.id).toBe(1);
    expect(state.mpState).toBe("halted");
    expect(state.groups.map((g) => g.name)).toEqual(["registers", "segments", "tables", "control"]);
    const [general, segments, tables, control] = state.groups.map((g) => g.values);
    expect(general).toMatchObject({ rax: "0x0", rbx: "0x1", r15: "0xf", rip: "0xffffffff81000000", rflags: "0x202" });
    expect(Object.keys(general!)).toHaveLength(18);
    expect(segments!.cs).toBe("sel=0x10 base=0x0 limit=0xffffffff type=11 dpl=0 p=1 s=1 l=1 db=0 g=1");
    expect(tables).toEqual({ gdt: "base=0x500 limit=0x1f", idt: "base=0x0 limit=0xffff" });
    expect(control).toEqual({ cr0: "0x80050033", cr2: "0x0", cr3: "0x9000", cr4: "0x20", cr8: "0x0", efer: "0x500", apicBase: "0xfee00900" });
    expect(describeVcpu(0, 42, regs, sregs).mpState).toBe("42");
  });
});
