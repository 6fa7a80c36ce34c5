// The in-kernel GIC: a KVM device (KVM_CREATE_DEVICE) placed and sized through its attributes, initialised once
// every vCPU exists. GICv3 (distributor + one contiguous redistributor region, two 64 KiB frames per vCPU) with an
// optional ITS for MSIs, or GICv2 (distributor + CPU interface) on hosts whose GIC can only present v2.
// Attribute numbers: asm/kvm.h ("Device Control API: ARM VGIC"); checked by test/arm64-abi.test.ts.
import { KvmDeviceType } from "../constants.js";
import { KvmError } from "../errors.js";
import type { NativeArm64 } from "../native.js";

/** vGIC attribute groups (KVM_DEV_ARM_VGIC_GRP_*). */
export const VgicGroup = {
  ADDR: 0,
  DIST_REGS: 1,
  CPU_REGS: 2,
  NR_IRQS: 3,
  CTRL: 4,
  REDIST_REGS: 5,
  CPU_SYSREGS: 6,
  LEVEL_INFO: 7,
  ITS_REGS: 8,
} as const;

/** Attributes of VgicGroup.ADDR: which region a 64-bit guest-physical base places (KVM_VGIC_*_ADDR_TYPE_*). */
export const VgicAddr = { V2_DIST: 0, V2_CPU: 1, V3_DIST: 2, V3_REDIST: 3, ITS: 4, V3_REDIST_REGION: 5 } as const;

/** Attributes of VgicGroup.CTRL (KVM_DEV_ARM_VGIC_CTRL_INIT, KVM_DEV_ARM_ITS_*). */
export const VgicCtrl = { INIT: 0, ITS_SAVE_TABLES: 1, ITS_RESTORE_TABLES: 2, SAVE_PENDING_TABLES: 3, ITS_RESET: 4 } as const;

/** Region sizes in guest-physical space; a GICv3 redistributor region is REDIST_PER_VCPU times the vCPU count. */
export const VgicRegionSize = {
  V2_DIST: 0x1000,
  V2_CPU: 0x2000,
  V3_DIST: 0x10000,
  V3_REDIST_PER_VCPU: 0x20000,
  ITS: 0x20000,
} as const;

/**
 * Where the vGIC goes. `nrIrqs` counts every INTID the distributor has, SGIs and PPIs included (a multiple of 32,
 * 64 to 1024; KVM's default when left out is 256: SPIs 32-255).
 */
export type VgicConfig =
  | { version: 3; distributor: number; redistributor: number; its?: number; nrIrqs?: number }
  | { version: 2; distributor: number; cpuInterface: number; nrIrqs?: number };

/** KVM's interrupt count when NR_IRQS is not set (VGIC_NR_IRQS_LEGACY). */
const DEFAULT_NR_IRQS = 256;

function assertBase(what: string, v: number, align: number): void {
  if (!Number.isSafeInteger(v) || v < 0 || v % align !== 0) {
    throw new RangeError(`vGIC ${what} base must be a ${align / 1024} KiB aligned guest-physical address, got ${v}`);
  }
}

/** The in-kernel GIC of an Arm64Vm (Arm64Vm.createVgic). */
export class Vgic {
  readonly version: 2 | 3;
  /** INTIDs the distributor has (SPIs are 32 to nrIrqs - 1). */
  readonly nrIrqs: number;
  private open = true;

  /** @internal Use Arm64Vm.createVgic(). */
  constructor(
    private readonly addon: NativeArm64,
    /** The GIC device fd. */
    readonly fd: number,
    /** The ITS device fd, when the config placed one. */
    readonly itsFd: number | undefined,
    readonly config: VgicConfig,
  ) {
    this.version = config.version;
    this.nrIrqs = config.nrIrqs ?? DEFAULT_NR_IRQS;
  }

  /**
   * KVM_DEV_ARM_VGIC_CTRL_INIT on the GIC, then on the ITS: after every vCPU is created (and init()ed), before the
   * first run. A vCPU's PMU is initialised after this (Arm64Vcpu.initPmu).
   */
  init(): void {
    this.assertOpen();
    this.addon.setDeviceAttr(this.fd, VgicGroup.CTRL, VgicCtrl.INIT, 0);
    if (this.itsFd !== undefined) this.addon.setDeviceAttr(this.itsFd, VgicGroup.CTRL, VgicCtrl.INIT, 0);
  }

  /** Closes the device fds (the VM keeps the devices; Arm64Vm.close() calls this). */
  close(): void {
    if (!this.open) return;
    this.open = false;
    if (this.itsFd !== undefined) this.addon.closeFd(this.itsFd);
    this.addon.closeFd(this.fd);
  }

  private assertOpen(): void {
    if (!this.open) throw new KvmError("vgic (closed)", "EBADF", 9);
  }
}

/** The attribute writes that place and size a vGIC: [group, attribute, value] with 64-bit addresses, 32-bit counts. */
export function vgicSetup(config: VgicConfig): Array<{ group: number; attr: number; width: 4 | 8; value: number }> {
  const steps: Array<{ group: number; attr: number; width: 4 | 8; value: number }> = [];
  const addr = (attr: number, value: number) => steps.push({ group: VgicGroup.ADDR, attr, width: 8, value });
  if (config.version === 3) {
    assertBase("distributor", config.distributor, 0x10000);
    assertBase("redistributor", config.redistributor, 0x10000);
    addr(VgicAddr.V3_DIST, config.distributor);
    addr(VgicAddr.V3_REDIST, config.redistributor);
  } else if (config.version === 2) {
    assertBase("distributor", config.distributor, 0x1000);
    assertBase("CPU interface", config.cpuInterface, 0x1000);
    addr(VgicAddr.V2_DIST, config.distributor);
    addr(VgicAddr.V2_CPU, config.cpuInterface);
  } else {
    throw new RangeError(`vGIC version must be 2 or 3, got ${(config as { version: unknown }).version}`);
  }
  if (config.nrIrqs !== undefined) {
    const n = config.nrIrqs;
    if (!Number.isInteger(n) || n < 64 || n > 1024 || n % 32 !== 0) {
      throw new RangeError(`vGIC nrIrqs must be a multiple of 32 from 64 to 1024, got ${n}`);
    }
    steps.push({ group: VgicGroup.NR_IRQS, attr: 0, width: 4, value: n });
  }
  return steps;
}

/** Creates the GIC device (and the ITS) of `config` on a VM and places them. Closes what it made if a step fails. */
export function createVgic(addon: NativeArm64, vmFd: number, config: VgicConfig): Vgic {
  const steps = vgicSetup(config);
  if (config.version === 3 && config.its !== undefined) assertBase("ITS", config.its, 0x10000);
  const type = config.version === 3 ? KvmDeviceType.ARM_VGIC_V3 : KvmDeviceType.ARM_VGIC_V2;
  const fd = addon.createDevice(vmFd, type, false)!;
  let itsFd: number | undefined;
  try {
    for (const s of steps) addon.setDeviceAttr(fd, s.group, s.attr, s.width, s.value);
    if (config.version === 3 && config.its !== undefined) {
      itsFd = addon.createDevice(vmFd, KvmDeviceType.ARM_VGIC_ITS, false)!;
      addon.setDeviceAttr(itsFd, VgicGroup.ADDR, VgicAddr.ITS, 8, config.its);
    }
  } catch (e) {
    if (itsFd !== undefined) addon.closeFd(itsFd);
    addon.closeFd(fd);
    throw e;
  }
  return new Vgic(addon, fd, itsFd, config);
}
