import { describe, expect, it } from "vitest";
import { patchCpuid } from "./internals.js";

describe("patchCpuid", () => {
  const supported = [
    { function: 0, index: 0, flags: 0, eax: 0xd, ebx: 1, ecx: 2, edx: 3 },
    { function: 1, index: 0, flags: 0, eax: 0x806f8, ebx: 0x00000800, ecx: 0x7ffafbff, edx: 0xbfebfbff },
    { function: 0xb, index: 0, flags: 1, eax: 1, ebx: 1, ecx: 0x100, edx: 0 },
  ];

  it("gives each vCPU its APIC ID (leaf 1 EBX[31:24], leaf 0xB EDX), the CPU count and the hypervisor bit", () => {
    const cpu1 = patchCpuid(supported, 1, 2);
    expect(cpu1[1]!.ebx >>> 24).toBe(1);
    expect((cpu1[1]!.ebx >>> 16) & 0xff).toBe(2);
    expect(cpu1[1]!.ebx & 0xffff).toBe(0x0800);
    expect(cpu1[1]!.ecx >>> 31).toBe(1);
    expect((cpu1[1]!.edx >>> 28) & 1).toBe(1);
    expect(cpu1[2]!.edx).toBe(1);
    expect(cpu1[0]).toEqual(supported[0]);
    const single = patchCpuid(supported, 0, 1);
    expect((single[1]!.edx >>> 28) & 1).toBe(0);
    expect(supported[1]!.ebx).toBe(0x800); // the input is not modified
  });
});
