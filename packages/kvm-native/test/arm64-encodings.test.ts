// The arm64 encoders on their own: how ids, IRQ lines, feature words and vGIC attribute writes are put together
// and what they refuse. test/arm64-abi.test.ts checks the same values against the arm64 uapi headers.
import { describe, expect, it } from "vitest";
import {
  ARM64_CORE_REGS,
  arm64CoreRegId,
  arm64FeatureWords,
  arm64InitFeatures,
  arm64IrqLine,
  arm64RegBytes,
  arm64SpiGsi,
  arm64SysRegId,
  Arm64VcpuFeature,
  VgicAddr,
  VgicGroup,
  vgicSetup,
  type Arm64CoreReg,
} from "../src/index.js";
import { arm64RegBytesOf, arm64RegValue } from "../src/arm64/registers.js";

const field = (id: bigint, shift: bigint, bits: bigint) => Number((id >> shift) & ((1n << bits) - 1n));

describe("arm64 ONE_REG ids", () => {
  it("gives every core register a distinct id in the arm64 core space, indexed by its offset in 32-bit words", () => {
    const ids = ARM64_CORE_REGS.map(arm64CoreRegId);
    expect(new Set(ids).size).toBe(ARM64_CORE_REGS.length);
    expect(ARM64_CORE_REGS).toHaveLength(31 + 3 + 2 + 5 + 32 + 2);
    for (const id of ids) {
      expect(field(id, 60n, 4n)).toBe(6); // KVM_REG_ARM64
      expect(field(id, 16n, 12n)).toBe(0x10); // KVM_REG_ARM_CORE
    }
    const index = (r: Arm64CoreReg) => field(arm64CoreRegId(r), 0n, 16n);
    for (let n = 1; n <= 30; n++) expect(index(`x${n}` as Arm64CoreReg) - index(`x${n - 1}` as Arm64CoreReg)).toBe(2);
    expect([index("x30") + 2, index("sp") + 2, index("pc") + 2]).toEqual([index("sp"), index("pc"), index("pstate")]);
    expect(index("v1") - index("v0")).toBe(4);
    expect(index("fpcr") - index("fpsr")).toBe(1);
  });

  it("sizes each id as its struct field: 64-bit registers, 128-bit vector registers, 32-bit fpsr/fpcr", () => {
    expect(arm64RegBytes(arm64CoreRegId("pc"))).toBe(8);
    expect(arm64RegBytes(arm64CoreRegId("x17"))).toBe(8);
    expect(arm64RegBytes(arm64CoreRegId("spsr_fiq"))).toBe(8);
    expect(arm64RegBytes(arm64CoreRegId("v31"))).toBe(16);
    expect(arm64RegBytes(arm64CoreRegId("fpcr"))).toBe(4);
    expect(() => arm64CoreRegId("x31" as Arm64CoreReg)).toThrow(RangeError);
    expect(() => arm64CoreRegId("rip" as Arm64CoreReg)).toThrow(/not an arm64 core register/);
  });

  it("packs system register encodings into their fields and refuses out-of-range ones", () => {
    const id = arm64SysRegId(3, 4, 12, 9, 6);
    expect([field(id, 14n, 2n), field(id, 11n, 3n), field(id, 7n, 4n), field(id, 3n, 4n), field(id, 0n, 3n)]).toEqual([3, 4, 12, 9, 6]);
    expect(field(id, 16n, 12n)).toBe(0x13); // KVM_REG_ARM64_SYSREG
    expect(arm64RegBytes(id)).toBe(8);
    expect(() => arm64SysRegId(4, 0, 0, 0, 0)).toThrow(/op0 must be 0 to 3/);
    expect(() => arm64SysRegId(3, 8, 0, 0, 0)).toThrow(/op1/);
    expect(() => arm64SysRegId(3, 0, 16, 0, 0)).toThrow(/CRn/);
    expect(() => arm64SysRegId(3, 0, 0, 0, 1.5)).toThrow(/op2/);
  });

  it("moves values as little-endian bytes of the id's width, refusing ones that do not fit", () => {
    const pc = arm64CoreRegId("pc");
    expect([...arm64RegBytesOf(pc, 0x40080000)]).toEqual([0, 0, 8, 0x40, 0, 0, 0, 0]);
    const v0 = arm64CoreRegId("v0");
    const wide = (1n << 127n) | 0x0123456789abcdefn;
    expect(arm64RegBytesOf(v0, wide)).toHaveLength(16);
    expect(arm64RegValue(arm64RegBytesOf(v0, wide))).toBe(wide);
    expect(arm64RegValue(arm64RegBytesOf(pc, 2n ** 64n - 1n))).toBe(2n ** 64n - 1n);
    expect(() => arm64RegBytesOf(pc, 2n ** 64n)).toThrow(RangeError);
    expect(() => arm64RegBytesOf(arm64CoreRegId("fpsr"), 2n ** 32n)).toThrow(/holds 32 bits/);
    expect(() => arm64RegBytesOf(pc, -1)).toThrow(RangeError);
    expect(() => arm64RegBytesOf(pc, 2 ** 53)).toThrow(/safe integers/);
  });
});

describe("arm64 interrupt lines", () => {
  const decode = (irq: number) => ({ vcpu2: irq >>> 28, type: (irq >>> 24) & 0xf, vcpu: (irq >>> 16) & 0xff, num: irq & 0xffff });

  it("encodes SPIs by INTID with the SPI type and PPIs with the vCPU index split over both vCPU fields", () => {
    expect(decode(arm64IrqLine({ type: "spi", intid: 33 }))).toEqual({ vcpu2: 0, type: 1, vcpu: 0, num: 33 });
    expect(decode(arm64IrqLine({ type: "ppi", intid: 27, vcpu: 3 }))).toEqual({ vcpu2: 0, type: 2, vcpu: 3, num: 27 });
    const high = arm64IrqLine({ type: "ppi", intid: 23, vcpu: 0xabc });
    expect(high).toBeGreaterThan(2 ** 31); // unsigned, as the __u32 field
    expect(decode(high)).toEqual({ vcpu2: 0xa, type: 2, vcpu: 0xbc, num: 23 });
  });

  it("refuses INTIDs outside the SPI (32-1019) and PPI (16-31) ranges and vCPU indexes past 4095", () => {
    expect(() => arm64IrqLine({ type: "spi", intid: 31 })).toThrow(/SPI INTID must be 32 to 1019/);
    expect(() => arm64IrqLine({ type: "spi", intid: 1020 })).toThrow(RangeError);
    expect(() => arm64IrqLine({ type: "ppi", intid: 32, vcpu: 0 })).toThrow(/PPI INTID must be 16 to 31/);
    expect(() => arm64IrqLine({ type: "ppi", intid: 16, vcpu: 4096 })).toThrow(/vcpu index/);
    expect(() => arm64IrqLine({ type: "sgi", intid: 1 } as never)).toThrow(TypeError);
  });

  it("names SPIs for irqfd and routes by GSI = INTID - 32", () => {
    expect(arm64SpiGsi(32)).toBe(0);
    expect(arm64SpiGsi(1019)).toBe(987);
    expect(() => arm64SpiGsi(27)).toThrow(RangeError);
  });
});

describe("arm64 vCPU init features", () => {
  it("sets PSCI 0.2 unless told not to, POWER_OFF and PMUv3 on request, and packs bits into 7 words", () => {
    expect(arm64InitFeatures({})).toEqual([Arm64VcpuFeature.PSCI_0_2]);
    expect(arm64InitFeatures({ psci: false })).toEqual([]);
    expect(arm64InitFeatures({ powerOff: true, pmu: true }).sort()).toEqual(
      [Arm64VcpuFeature.PSCI_0_2, Arm64VcpuFeature.POWER_OFF, Arm64VcpuFeature.PMU_V3].sort(),
    );
    expect(arm64FeatureWords([0, 2, 31, 32, 223])).toEqual([2 ** 31 + 5, 1, 0, 0, 0, 0, 2 ** 31]);
    expect(() => arm64FeatureWords([224])).toThrow(RangeError);
  });
});

describe("vGIC placement", () => {
  it("places a GICv3 distributor and redistributors with 64-bit address writes and sets the interrupt count", () => {
    expect(vgicSetup({ version: 3, distributor: 0x3fff0000, redistributor: 0x3fef0000, nrIrqs: 128 })).toEqual([
      { group: VgicGroup.ADDR, attr: VgicAddr.V3_DIST, width: 8, value: 0x3fff0000 },
      { group: VgicGroup.ADDR, attr: VgicAddr.V3_REDIST, width: 8, value: 0x3fef0000 },
      { group: VgicGroup.NR_IRQS, attr: 0, width: 4, value: 128 },
    ]);
    expect(vgicSetup({ version: 2, distributor: 0x3fff0000, cpuInterface: 0x3ffd0000 })).toEqual([
      { group: VgicGroup.ADDR, attr: VgicAddr.V2_DIST, width: 8, value: 0x3fff0000 },
      { group: VgicGroup.ADDR, attr: VgicAddr.V2_CPU, width: 8, value: 0x3ffd0000 },
    ]);
  });

  it("refuses misaligned regions, interrupt counts KVM would refuse, and unknown versions", () => {
    expect(() => vgicSetup({ version: 3, distributor: 0x1000, redistributor: 0x20000 })).toThrow(/distributor base must be a 64 KiB aligned/);
    expect(() => vgicSetup({ version: 2, distributor: 0x1000, cpuInterface: 0x2800 })).toThrow(/CPU interface base must be a 4 KiB aligned/);
    for (const nrIrqs of [32, 100, 1056]) {
      expect(() => vgicSetup({ version: 3, distributor: 0, redistributor: 0x10000, nrIrqs })).toThrow(/multiple of 32 from 64 to 1024/);
    }
    expect(() => vgicSetup({ version: 4 } as never)).toThrow(/version must be 2 or 3/);
  });
});
