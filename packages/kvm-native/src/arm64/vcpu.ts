// The arm64 vCPU: KVM_ARM_VCPU_INIT (PSCI, powered-off secondaries, PMUv3), registers by ONE_REG id, the
// register list, vCPU attributes (PMU and timer interrupts). MMIO exits go to an Arm64ExitDispatch.
import { KvmError } from "../errors.js";
import type { NativeArm64, NativeArm64Vcpu } from "../native.js";
import { VcpuBase } from "../vcpu-base.js";
import { arm64CoreRegId, arm64RegBytesOf, arm64RegValue, Arm64SysReg, type Arm64CoreReg } from "./registers.js";
import type { Arm64ExitDispatch, Arm64VcpuRunResult } from "./types.js";

/** KVM_ARM_VCPU_* feature bit numbers of KVM_ARM_VCPU_INIT (asm/kvm.h). */
export const Arm64VcpuFeature = {
  POWER_OFF: 0,
  EL1_32BIT: 1,
  PSCI_0_2: 2,
  PMU_V3: 3,
  SVE: 4,
  PTRAUTH_ADDRESS: 5,
  PTRAUTH_GENERIC: 6,
} as const;

/** KVM_MP_STATE_* an arm64 vCPU has: a powered-off vCPU is STOPPED until PSCI CPU_ON. */
export const Arm64MpState = { RUNNABLE: 0, STOPPED: 5, SUSPENDED: 10 } as const;

/** A vCPU attribute: its group, attribute and value width (asm/kvm.h, "Device Control API on vcpu fd"). */
export interface Arm64VcpuAttribute {
  group: number;
  attr: number;
  /** Bytes of the value (0: none). */
  width: 0 | 4 | 8;
}

/** The vCPU attributes a machine sets: PMUv3's overflow interrupt and init, the timers' PPIs, stolen-time's page. */
export const Arm64VcpuAttr = {
  PMU_V3_IRQ: { group: 0, attr: 0, width: 4 },
  PMU_V3_INIT: { group: 0, attr: 1, width: 0 },
  TIMER_IRQ_VTIMER: { group: 1, attr: 0, width: 4 },
  TIMER_IRQ_PTIMER: { group: 1, attr: 1, width: 4 },
  PVTIME_IPA: { group: 2, attr: 0, width: 8 },
} as const satisfies Record<string, Arm64VcpuAttribute>;

export interface Arm64VcpuInitOptions {
  /** Start powered off (KVM_ARM_VCPU_POWER_OFF): every vCPU but the boot one, which the guest starts with PSCI CPU_ON. */
  powerOff?: boolean;
  /** PSCI 0.2 or later in the kernel (KVM_ARM_VCPU_PSCI_0_2, KVM_CAP_ARM_PSCI_0_2). Default true. */
  psci?: boolean;
  /** A PMUv3 (KVM_ARM_VCPU_PMU_V3, KVM_CAP_ARM_PMU_V3); then initPmu() after the vGIC's init. */
  pmu?: boolean;
  /** Further feature bit numbers (Arm64VcpuFeature: SVE, pointer authentication). */
  features?: readonly number[];
}

/** The 7 feature words of KVM_ARM_VCPU_INIT with the given bit numbers set. */
export function arm64FeatureWords(bits: readonly number[]): number[] {
  const words = [0, 0, 0, 0, 0, 0, 0];
  for (const b of bits) {
    if (!Number.isInteger(b) || b < 0 || b >= 32 * words.length) throw new RangeError(`vCPU feature bit must be 0 to ${32 * words.length - 1}, got ${b}`);
    words[b >> 5] = (words[b >> 5]! | (1 << (b & 31))) >>> 0;
  }
  return words;
}

/** The feature bits init() sets for `options`. */
export function arm64InitFeatures(options: Arm64VcpuInitOptions): number[] {
  return [
    ...((options.psci ?? true) ? [Arm64VcpuFeature.PSCI_0_2] : []),
    ...(options.powerOff ? [Arm64VcpuFeature.POWER_OFF] : []),
    ...(options.pmu ? [Arm64VcpuFeature.PMU_V3] : []),
    ...(options.features ?? []),
  ];
}

/** An arm64 virtual CPU (Arm64Vm.createVcpu()); call init() before anything else. */
export class Arm64Vcpu extends VcpuBase<NativeArm64Vcpu, Arm64ExitDispatch, Arm64VcpuRunResult> {
  /** @internal Use Arm64Vm.createVcpu(). */
  constructor(
    handle: NativeArm64Vcpu,
    id: number,
    private readonly fd: number,
    private readonly addon: NativeArm64,
    private readonly preferredTarget: () => { target: number },
    owner?: object,
  ) {
    super(handle, id, owner);
  }

  /**
   * KVM_ARM_VCPU_INIT with the host's preferred target: registers take their reset values (PC 0, PSTATE EL1h with
   * DAIF masked). Every vCPU of a VM must get the same features except powerOff. Calling it again resets the vCPU
   * (what a machine does on a guest's PSCI SYSTEM_RESET).
   */
  init(options: Arm64VcpuInitOptions = {}): void {
    this.h().init(this.preferredTarget().target, arm64FeatureWords(arm64InitFeatures(options)));
  }

  /** KVM_GET_ONE_REG: the register's value, as wide as the id says (128-bit vector registers too). */
  getOneReg(id: bigint): bigint {
    return arm64RegValue(this.h().getOneReg(id));
  }

  /** KVM_SET_ONE_REG: the value must fit in the id's width. */
  setOneReg(id: bigint, value: bigint | number): void {
    const bytes = arm64RegBytesOf(id, value);
    this.h().setOneReg(id, bytes);
  }

  getCoreReg(name: Arm64CoreReg): bigint {
    return this.getOneReg(arm64CoreRegId(name));
  }

  /** Sets a core register; how a machine boots Linux: pc = the Image's entry, x0 = the devicetree's address. */
  setCoreReg(name: Arm64CoreReg, value: bigint | number): void {
    this.setOneReg(arm64CoreRegId(name), value);
  }

  /** MPIDR_EL1 (after init): its affinity bits are the cpu node's `reg` in the devicetree. */
  mpidr(): bigint {
    return this.getOneReg(Arm64SysReg.MPIDR_EL1);
  }

  /** KVM_GET_REG_LIST: the id of every register the vCPU has (after init). */
  regList(): bigint[] {
    return [...this.h().getRegList()];
  }

  /** KVM_HAS_DEVICE_ATTR on the vCPU. */
  hasAttr(a: Arm64VcpuAttribute): boolean {
    this.h();
    return this.addon.hasDeviceAttr(this.fd, a.group, a.attr);
  }

  /** KVM_SET_DEVICE_ATTR on the vCPU; `value` as wide as the attribute (none for width 0). */
  setAttr(a: Arm64VcpuAttribute, value?: number | bigint): void {
    this.h();
    if ((a.width === 0) !== (value === undefined)) {
      throw new TypeError(a.width === 0 ? "this vCPU attribute takes no value" : `this vCPU attribute takes a ${a.width}-byte value`);
    }
    this.addon.setDeviceAttr(this.fd, a.group, a.attr, a.width, value);
  }

  /**
   * PMUv3 with its overflow interrupt `intid` (the same PPI, usually 23, on every vCPU): after init({ pmu: true })
   * and after the vGIC's init().
   */
  initPmu(intid: number): void {
    if (!Number.isInteger(intid) || intid < 16 || intid > 1019) throw new RangeError(`PMU interrupt must be a PPI or SPI INTID (16 to 1019), got ${intid}`);
    if (!this.hasAttr(Arm64VcpuAttr.PMU_V3_INIT)) {
      throw new KvmError("KVM_HAS_DEVICE_ATTR", "ENXIO", 6, `vCPU ${this.id} has no PMUv3 (init it with { pmu: true } on a host with KVM_CAP_ARM_PMU_V3)`);
    }
    this.setAttr(Arm64VcpuAttr.PMU_V3_IRQ, intid);
    this.setAttr(Arm64VcpuAttr.PMU_V3_INIT);
  }
}
