// arm64 register ids for KVM_GET/SET_ONE_REG (linux/kvm.h, arch/arm64/include/uapi/asm/kvm.h). An id is
// KVM_REG_ARM64 | the value's size | a coprocessor field | an index: core registers are indexed by their offset in
// struct kvm_regs in 32-bit words, system registers by their (op0, op1, CRn, CRm, op2) encoding.
// test/arm64-abi.test.ts checks every value here against the arm64 uapi headers with the cross compiler.

const KVM_REG_ARM64 = 0x6000000000000000n;
const KVM_REG_SIZE_SHIFT = 52n;
const KVM_REG_SIZE_MASK = 0x00f0000000000000n;
const KVM_REG_ARM_COPROC_SHIFT = 16n;
const KVM_REG_ARM_CORE = 0x0010n << KVM_REG_ARM_COPROC_SHIFT;
const KVM_REG_ARM64_SYSREG = 0x0013n << KVM_REG_ARM_COPROC_SHIFT;
const KVM_REG_ARM_FW = 0x0014n << KVM_REG_ARM_COPROC_SHIFT;

/** The size field of an id for a value of `bytes` bytes (KVM_REG_SIZE_U32 for 4, ...). */
function sizeField(bytes: number): bigint {
  return BigInt(Math.log2(bytes)) << KVM_REG_SIZE_SHIFT;
}

type XRegNumber = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10 | 11 | 12 | 13 | 14 | 15 | 16 | 17 | 18 | 19 | 20 | 21 | 22 | 23 | 24 | 25 | 26 | 27 | 28 | 29 | 30;
type VRegNumber = XRegNumber | 31;

/**
 * A field of struct kvm_regs: x0-x30, sp (SP_EL0), pc, pstate, the EL1 state KVM keeps beside them (sp_el1,
 * elr_el1, the five banked SPSRs) and the FP/SIMD state (v0-v31 are 128 bits, fpsr and fpcr 32).
 */
export type Arm64CoreReg =
  | `x${XRegNumber}`
  | "sp"
  | "pc"
  | "pstate"
  | "sp_el1"
  | "elr_el1"
  | "spsr_el1"
  | "spsr_abt"
  | "spsr_und"
  | "spsr_irq"
  | "spsr_fiq"
  | `v${VRegNumber}`
  | "fpsr"
  | "fpcr";

/** struct kvm_regs field by field: [name, byte offset, bytes] (user_pt_regs, EL1 state, user_fpsimd_state at 336). */
const CORE_FIELDS: ReadonlyArray<readonly [string, number, 4 | 8 | 16]> = [
  ...Array.from({ length: 31 }, (_, n) => [`x${n}`, 8 * n, 8] as const),
  ["sp", 248, 8],
  ["pc", 256, 8],
  ["pstate", 264, 8],
  ["sp_el1", 272, 8],
  ["elr_el1", 280, 8],
  ...["el1", "abt", "und", "irq", "fiq"].map((m, i) => [`spsr_${m}`, 288 + 8 * i, 8] as const),
  ...Array.from({ length: 32 }, (_, n) => [`v${n}`, 336 + 16 * n, 16] as const),
  ["fpsr", 848, 4],
  ["fpcr", 852, 4],
];

const CORE_IDS: ReadonlyMap<string, bigint> = new Map(
  CORE_FIELDS.map(([name, offset, bytes]) => [name, KVM_REG_ARM64 | sizeField(bytes) | KVM_REG_ARM_CORE | BigInt(offset / 4)]),
);

/** Every core register name, in struct kvm_regs order. */
export const ARM64_CORE_REGS: readonly Arm64CoreReg[] = CORE_FIELDS.map(([name]) => name as Arm64CoreReg);

/** The ONE_REG id of a core register (KVM_REG_ARM_CORE_REG(offset) with the field's size). */
export function arm64CoreRegId(name: Arm64CoreReg): bigint {
  const id = CORE_IDS.get(name);
  if (id === undefined) throw new RangeError(`${String(name)} is not an arm64 core register (x0-x30, sp, pc, pstate, ...)`);
  return id;
}

const SYSREG_FIELDS: ReadonlyArray<readonly [name: string, max: number, shift: bigint]> = [
  ["op0", 3, 14n],
  ["op1", 7, 11n],
  ["CRn", 15, 7n],
  ["CRm", 15, 3n],
  ["op2", 7, 0n],
];

/** The ONE_REG id of a 64-bit system register by its encoding (ARM64_SYS_REG(op0, op1, CRn, CRm, op2)). */
export function arm64SysRegId(op0: number, op1: number, crn: number, crm: number, op2: number): bigint {
  let id = KVM_REG_ARM64 | sizeField(8) | KVM_REG_ARM64_SYSREG;
  [op0, op1, crn, crm, op2].forEach((v, i) => {
    const [name, max, shift] = SYSREG_FIELDS[i]!;
    if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`system register ${name} must be 0 to ${max}, got ${v}`);
    id |= BigInt(v) << shift;
  });
  return id;
}

/** How many bytes a register id's value has (KVM_REG_SIZE). */
export function arm64RegBytes(id: bigint): number {
  return 1 << Number((id & KVM_REG_SIZE_MASK) >> KVM_REG_SIZE_SHIFT);
}

/**
 * System registers a machine reads or sets. MPIDR_EL1's affinity fields are what a devicetree cpu node's `reg`
 * holds. The virtual timer ids are KVM's ABI, in which CVAL and CNT carry each other's encodings by a historical
 * mistake (asm/kvm.h says so): use these ids, not encodings of your own.
 */
export const Arm64SysReg = {
  MIDR_EL1: arm64SysRegId(3, 0, 0, 0, 0),
  MPIDR_EL1: arm64SysRegId(3, 0, 0, 0, 5),
  /** KVM_REG_ARM_TIMER_CTL */
  CNTV_CTL_EL0: arm64SysRegId(3, 3, 14, 3, 1),
  /** KVM_REG_ARM_TIMER_CVAL */
  CNTV_CVAL_EL0: arm64SysRegId(3, 3, 14, 0, 2),
  /** KVM_REG_ARM_TIMER_CNT: the virtual count */
  CNTVCT_EL0: arm64SysRegId(3, 3, 14, 3, 2),
} as const;

/** KVM's firmware pseudo-registers (KVM_REG_ARM_FW_REG). PSCI_VERSION: the PSCI version the guest sees. */
export const Arm64FirmwareReg = {
  PSCI_VERSION: KVM_REG_ARM64 | sizeField(8) | KVM_REG_ARM_FW | 0n,
} as const;

/** PSTATE bits (asm/ptrace.h). KVM resets a vCPU to EL1h with D, A, I and F masked (0x3c5), as Linux's boot protocol wants. */
export const Arm64Pstate = { MODE_EL1H: 0x5, F: 0x40, I: 0x80, A: 0x100, D: 0x200 } as const;

/** A register value as little-endian bytes of the id's width (what ONE_REG moves). */
export function arm64RegBytesOf(id: bigint, value: bigint | number): Uint8Array {
  const bytes = arm64RegBytes(id);
  const v = typeof value === "bigint" ? value : Number.isSafeInteger(value) && value >= 0 ? BigInt(value) : -1n;
  if (v < 0n || v >> BigInt(8 * bytes) !== 0n) {
    throw new RangeError(`register 0x${id.toString(16)} holds ${8 * bytes} bits; ${String(value)} does not fit (numbers must be non-negative safe integers)`);
  }
  const out = new Uint8Array(bytes);
  for (let i = 0, r = v; i < bytes; i++, r >>= 8n) out[i] = Number(r & 0xffn);
  return out;
}

/** The value of little-endian register bytes. */
export function arm64RegValue(bytes: Uint8Array): bigint {
  let v = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]!);
  return v;
}
