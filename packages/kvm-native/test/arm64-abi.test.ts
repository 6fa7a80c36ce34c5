// Every number the arm64 half of the TypeScript API encodes, checked against the arm64 uapi headers of the
// cross toolchain (/usr/aarch64-linux-gnu/include): each becomes a static_assert comparing the TypeScript value
// with the header's own expression, and the cross compiler evaluates them all. No arm64 machine is needed.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  ARM64_CORE_REGS,
  arm64CoreRegId,
  arm64FeatureWords,
  Arm64FirmwareReg,
  arm64IrqLine,
  Arm64MpState,
  Arm64Pstate,
  arm64RegBytes,
  arm64SysRegId,
  Arm64SysReg,
  Arm64VcpuAttr,
  Arm64VcpuFeature,
  InternalError,
  KVM_API_VERSION,
  KvmCap,
  KvmDeviceType,
  MpState,
  SystemEvent,
  VgicAddr,
  VgicCtrl,
  VgicGroup,
  VgicRegionSize,
  type Arm64CoreReg,
  type Arm64Irq,
} from "../src/index.js";
import { IoeventfdFlags, MemFlags } from "../src/constants.js";
import { cross, crossGate } from "./support/cross.js";

type Check = [label: string, value: bigint | number, header: string];

/** The header expression for a core register: its field in struct kvm_regs and the size that field has. */
function coreField(name: Arm64CoreReg): string {
  const spsr = /^spsr_(el1|abt|und|irq|fiq)$/.exec(name);
  const field = /^x(\d+)$/.test(name)
    ? `regs.regs[${name.slice(1)}]`
    : /^v(\d+)$/.test(name)
      ? `fp_regs.vregs[${name.slice(1)}]`
      : spsr
        ? `spsr[KVM_SPSR_${spsr[1]!.toUpperCase()}]`
        : ["sp", "pc", "pstate"].includes(name)
          ? `regs.${name}`
          : ["fpsr", "fpcr"].includes(name)
            ? `fp_regs.${name}`
            : name;
  const size = name.startsWith("v") ? "KVM_REG_SIZE_U128" : name.startsWith("fp") ? "KVM_REG_SIZE_U32" : "KVM_REG_SIZE_U64";
  return `KVM_REG_ARM64 | ${size} | KVM_REG_ARM_CORE | KVM_REG_ARM_CORE_REG(${field})`;
}

const table = <T extends Record<string, number | bigint>>(prefix: string, t: T, rename: Partial<Record<keyof T, string>> = {}): Check[] =>
  Object.entries(t).map(([k, v]) => [`${prefix}.${k}`, v, rename[k as keyof T] ?? `KVM_${prefix === "KvmCap" ? "CAP" : ""}_${k}`]);

// kvm_irq_level.irq is a __u32: the fields are packed in int arithmetic, then truncated to it.
const IRQ = (type: string, vcpu: number, num: number) =>
  `(__u32)(((${vcpu >> 8} & KVM_ARM_IRQ_VCPU2_MASK) << KVM_ARM_IRQ_VCPU2_SHIFT) | ((KVM_ARM_IRQ_TYPE_${type} & KVM_ARM_IRQ_TYPE_MASK) << KVM_ARM_IRQ_TYPE_SHIFT) | ((${vcpu & 0xff} & KVM_ARM_IRQ_VCPU_MASK) << KVM_ARM_IRQ_VCPU_SHIFT) | ((${num} & KVM_ARM_IRQ_NUM_MASK) << KVM_ARM_IRQ_NUM_SHIFT))`;

const irqSamples: Array<[Arm64Irq, string]> = [
  [{ type: "spi", intid: 32 }, IRQ("SPI", 0, 32)],
  [{ type: "spi", intid: 1019 }, IRQ("SPI", 0, 1019)],
  [{ type: "ppi", intid: 16, vcpu: 0 }, IRQ("PPI", 0, 16)],
  [{ type: "ppi", intid: 27, vcpu: 5 }, IRQ("PPI", 5, 27)],
  [{ type: "ppi", intid: 23, vcpu: 300 }, IRQ("PPI", 300, 23)],
  [{ type: "ppi", intid: 31, vcpu: 4095 }, IRQ("PPI", 4095, 31)],
];

const SIZE_FIELDS = ["U8", "U16", "U32", "U64", "U128", "U256", "U512", "U1024", "U2048"];

/** Every check: [what, the TypeScript value, the header's expression]. */
const CHECKS: Check[] = [
  ...ARM64_CORE_REGS.map((r): Check => [`core ${r}`, arm64CoreRegId(r), coreField(r)]),
  ...SIZE_FIELDS.map((s, i): Check => [`arm64RegBytes ${s}`, arm64RegBytes(BigInt(i) << 52n), `KVM_REG_SIZE(KVM_REG_SIZE_${s})`]),
  ["sysreg all fields", arm64SysRegId(3, 7, 15, 15, 7), "ARM64_SYS_REG(3, 7, 15, 15, 7)"],
  ["sysreg PTIMER_CTL", arm64SysRegId(3, 3, 14, 2, 1), "KVM_REG_ARM_PTIMER_CTL"],
  ["Arm64SysReg.MIDR_EL1", Arm64SysReg.MIDR_EL1, "ARM64_SYS_REG(3, 0, 0, 0, 0)"],
  ["Arm64SysReg.MPIDR_EL1", Arm64SysReg.MPIDR_EL1, "ARM64_SYS_REG(3, 0, 0, 0, 5)"],
  ["Arm64SysReg.CNTV_CTL_EL0", Arm64SysReg.CNTV_CTL_EL0, "KVM_REG_ARM_TIMER_CTL"],
  ["Arm64SysReg.CNTV_CVAL_EL0", Arm64SysReg.CNTV_CVAL_EL0, "KVM_REG_ARM_TIMER_CVAL"],
  ["Arm64SysReg.CNTVCT_EL0", Arm64SysReg.CNTVCT_EL0, "KVM_REG_ARM_TIMER_CNT"],
  ["Arm64FirmwareReg.PSCI_VERSION", Arm64FirmwareReg.PSCI_VERSION, "KVM_REG_ARM_PSCI_VERSION"],
  ...table("Arm64Pstate", Arm64Pstate, { MODE_EL1H: "PSR_MODE_EL1h", F: "PSR_F_BIT", I: "PSR_I_BIT", A: "PSR_A_BIT", D: "PSR_D_BIT" }),
  ...Object.entries(Arm64VcpuFeature).map(([k, v]): Check => [`Arm64VcpuFeature.${k}`, v, `KVM_ARM_VCPU_${k}`]),
  [
    "arm64FeatureWords([PSCI_0_2, POWER_OFF, PMU_V3])[0]",
    arm64FeatureWords([Arm64VcpuFeature.PSCI_0_2, Arm64VcpuFeature.POWER_OFF, Arm64VcpuFeature.PMU_V3])[0]!,
    "(1u << KVM_ARM_VCPU_PSCI_0_2) | (1u << KVM_ARM_VCPU_POWER_OFF) | (1u << KVM_ARM_VCPU_PMU_V3)",
  ],
  ...Object.entries(Arm64MpState).map(([k, v]): Check => [`Arm64MpState.${k}`, v, `KVM_MP_STATE_${k}`]),
  ...Object.entries(Arm64VcpuAttr).flatMap(([k, a]): Check[] => {
    const [ctrl, attr] = {
      PMU_V3_IRQ: ["PMU_V3_CTRL", "PMU_V3_IRQ"],
      PMU_V3_INIT: ["PMU_V3_CTRL", "PMU_V3_INIT"],
      TIMER_IRQ_VTIMER: ["TIMER_CTRL", "TIMER_IRQ_VTIMER"],
      TIMER_IRQ_PTIMER: ["TIMER_CTRL", "TIMER_IRQ_PTIMER"],
      PVTIME_IPA: ["PVTIME_CTRL", "PVTIME_IPA"],
    }[k]!;
    return [
      [`Arm64VcpuAttr.${k}.group`, a.group, `KVM_ARM_VCPU_${ctrl}`],
      [`Arm64VcpuAttr.${k}.attr`, a.attr, `KVM_ARM_VCPU_${attr}`],
    ];
  }),
  ...Object.entries(VgicGroup).map(([k, v]): Check => [`VgicGroup.${k}`, v, `KVM_DEV_ARM_VGIC_GRP_${k}`]),
  ...table("VgicAddr", VgicAddr, {
    V2_DIST: "KVM_VGIC_V2_ADDR_TYPE_DIST",
    V2_CPU: "KVM_VGIC_V2_ADDR_TYPE_CPU",
    V3_DIST: "KVM_VGIC_V3_ADDR_TYPE_DIST",
    V3_REDIST: "KVM_VGIC_V3_ADDR_TYPE_REDIST",
    ITS: "KVM_VGIC_ITS_ADDR_TYPE",
    V3_REDIST_REGION: "KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION",
  }),
  ...table("VgicCtrl", VgicCtrl, {
    INIT: "KVM_DEV_ARM_VGIC_CTRL_INIT",
    ITS_SAVE_TABLES: "KVM_DEV_ARM_ITS_SAVE_TABLES",
    ITS_RESTORE_TABLES: "KVM_DEV_ARM_ITS_RESTORE_TABLES",
    SAVE_PENDING_TABLES: "KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES",
    ITS_RESET: "KVM_DEV_ARM_ITS_CTRL_RESET",
  }),
  ...table("VgicRegionSize", VgicRegionSize, {
    V2_DIST: "KVM_VGIC_V2_DIST_SIZE",
    V2_CPU: "KVM_VGIC_V2_CPU_SIZE",
    V3_DIST: "KVM_VGIC_V3_DIST_SIZE",
    V3_REDIST_PER_VCPU: "KVM_VGIC_V3_REDIST_SIZE",
    ITS: "KVM_VGIC_V3_ITS_SIZE",
  }),
  ...Object.entries(KvmDeviceType).map(([k, v]): Check => [`KvmDeviceType.${k}`, v, `KVM_DEV_TYPE_${k}`]),
  ...irqSamples.map(([irq, expr]): Check => [`arm64IrqLine(${JSON.stringify(irq)})`, arm64IrqLine(irq), expr]),
  // The shared constants, against the arm64 copy of linux/kvm.h (which has no PIT: KVM_CAP_PIT2 is x86's).
  ...Object.entries(KvmCap)
    .filter(([k]) => k !== "PIT2")
    .map(([k, v]): Check => [`KvmCap.${k}`, v, `KVM_CAP_${k}`]),
  ...Object.entries(MpState).map(([k, v]): Check => [`MpState.${k}`, v, `KVM_MP_STATE_${k}`]),
  ...Object.entries(SystemEvent).map(([k, v]): Check => [`SystemEvent.${k}`, v, `KVM_SYSTEM_EVENT_${k}`]),
  ...Object.entries(InternalError).map(([k, v]): Check => [`InternalError.${k}`, v, `KVM_INTERNAL_ERROR_${k}`]),
  ...table("MemFlags", MemFlags, { LOG_DIRTY_PAGES: "KVM_MEM_LOG_DIRTY_PAGES", READONLY: "KVM_MEM_READONLY" }),
  ...Object.entries(IoeventfdFlags).map(([k, v]): Check => [`IoeventfdFlags.${k}`, v, `KVM_IOEVENTFD_FLAG_${k}`]),
  ["KVM_API_VERSION", KVM_API_VERSION, "KVM_API_VERSION"],
];

/** A C++ file asserting each check; a failed one names its label in the compiler's error. */
function assertions(checks: Check[]): string {
  return [
    "#include <cstddef>",
    "#include <linux/kvm.h>",
    "#include <asm/ptrace.h>",
    "// asm/kvm.h sizes GICv3 regions in the kernel's SZ_64K (linux/sizes.h), which uapi does not export.",
    "#define SZ_64K 0x10000",
    ...checks.map(
      ([label, value, expr]) =>
        `static_assert(static_cast<unsigned long long>(${expr}) == 0x${BigInt(value).toString(16)}ULL, ${JSON.stringify(label)});`,
    ),
    "",
  ].join("\n");
}

describe.skipIf(!crossGate.ok)("arm64 encodings against the arm64 uapi headers (aarch64-linux-gnu-g++)", () => {
  const dir = mkdtempSync(join(tmpdir(), "kvm-native-arm64-abi-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function compile(name: string, checks: Check[]): Promise<void> {
    const file = join(dir, name);
    writeFileSync(file, assertions(checks));
    await cross(["-std=c++17", "-fsyntax-only", "-Werror", file]);
  }

  it(`agrees on all ${CHECKS.length} values: core and system register ids, vCPU features and attributes, vGIC attributes, IRQ lines, KVM constants`, async () => {
    await compile("abi.cc", CHECKS);
  });

  it("fails, naming the value, when one disagrees (the check can fail)", async () => {
    const [label, value, expr] = CHECKS.find(([l]) => l === "core pc")!;
    const wrong: Check[] = [[label, BigInt(value) + 2n, expr]];
    await expect(compile("wrong.cc", wrong)).rejects.toThrow(/static assertion failed: core pc/);
  });
});
