// The arm64 VM: vCPUs initialised for the host's preferred target, the in-kernel GIC (vGIC) as a KVM device,
// interrupt lines with arm64's KVM_IRQ_LINE encoding, MSIs with a device id for the ITS, GSI routes to SPIs.
import { KvmError } from "../errors.js";
import type { NativeArm64 } from "../native.js";
import { assertAddress, assertUint, VmBase } from "../vm-base.js";
import { arm64IrqLine, ARM64_FIRST_SPI, type Arm64Irq } from "./irq.js";
import { Arm64Vcpu } from "./vcpu.js";
import { createVgic, type Vgic, type VgicConfig } from "./vgic.js";

/**
 * A GSI route on arm64: to the vGIC's SPI pin (GSI = SPI INTID - 32, arm64SpiGsi) or an MSI, which the ITS
 * translates by `devid` (the requester id, bus << 8 | devfn; KVM_CAP_MSI_DEVID).
 */
export type Arm64GsiRoute =
  | { gsi: number; type: "irqchip"; pin: number }
  | { gsi: number; type: "msi"; address: number; data: number; devid?: number };

/** An arm64 KVM virtual machine (Kvm.createArm64Vm()). */
export class Arm64Vm extends VmBase {
  /** @internal */
  declare protected readonly addon: NativeArm64;
  private target: { target: number; features: number[] } | undefined;
  private gic: Vgic | undefined;

  /** @internal Use Kvm.createArm64Vm(). */
  constructor(fd: number, vcpuMmapSize: number, addon: NativeArm64) {
    super(fd, vcpuMmapSize, addon);
  }

  /** KVM_ARM_PREFERRED_TARGET: the CPU target every vCPU's init names (asked once). */
  preferredTarget(): { target: number; features: number[] } {
    this.target ??= this.addon.armPreferredTarget(this.assertOpen());
    return this.target;
  }

  /** A vCPU; init() it before anything else. */
  createVcpu(id: number): Arm64Vcpu {
    const fd = this.createVcpuFd(id);
    const handle = new this.addon.VcpuHandle(fd, this.vcpuMmapSize, id);
    return this.registerVcpu(id, new Arm64Vcpu(handle, id, fd, this.addon, () => this.preferredTarget(), this));
  }

  /** Whether this host can create a KVM device of `type` (KvmDeviceType; KVM_CREATE_DEVICE_TEST). */
  hasDevice(type: number): boolean {
    assertUint("device type", type);
    try {
      this.addon.createDevice(this.assertOpen(), type, true);
      return true;
    } catch (e) {
      if (e instanceof KvmError && e.errno === "ENODEV") return false;
      throw e;
    }
  }

  /**
   * Creates the in-kernel GIC and places it (one per VM): GICv3 with its redistributors (and the ITS when `its` is
   * given), or GICv2 where the host's GIC has no v3 to offer (hasDevice(KvmDeviceType.ARM_VGIC_V3) says). Call its
   * init() once every vCPU exists.
   */
  createVgic(config: VgicConfig): Vgic {
    if (this.gic) throw new KvmError("KVM_CREATE_DEVICE", "EEXIST", 17, "this VM already has a vGIC");
    this.gic = createVgic(this.addon, this.assertOpen(), config);
    return this.gic;
  }

  /** The vGIC createVgic made, if any. */
  get vgic(): Vgic | undefined {
    return this.gic;
  }

  /** KVM_IRQ_LINE: sets an SPI or a vCPU's PPI to `level` (level-triggered lines stay up until lowered). */
  irqLine(irq: Arm64Irq, level: boolean): void {
    const line = arm64IrqLine(irq);
    if (irq.type === "spi" && this.gic && irq.intid >= this.gic.nrIrqs) {
      throw new RangeError(`SPI ${irq.intid} is beyond the vGIC's ${this.gic.nrIrqs} interrupts`);
    }
    this.addon.irqLine(this.assertOpen(), line, level ? 1 : 0);
  }

  /** KVM_SIGNAL_MSI; `devid` (the requester id) is what the ITS translates by. Returns 1 if delivered, 0 if blocked. */
  signalMsi(address: number, data: number, devid?: number): number {
    assertAddress("address", address);
    assertUint("data", data);
    if (devid !== undefined) assertUint("devid", devid);
    return this.addon.signalMsi(this.assertOpen(), address, data, devid);
  }

  /** KVM_SET_GSI_ROUTING replaces the whole table (KVM's default routes GSI n to SPI n + 32; keep those you need). */
  setGsiRouting(entries: Arm64GsiRoute[]): void {
    const maxPin = (this.gic?.nrIrqs ?? 1024) - ARM64_FIRST_SPI - 1;
    const native = entries.map((e) => {
      assertUint("gsi", e.gsi);
      if (e.type === "irqchip") {
        assertUint("pin", e.pin, maxPin);
        return { gsi: e.gsi, type: "irqchip", irqchip: 0, pin: e.pin };
      }
      if (e.type === "msi") {
        assertAddress("address", e.address);
        assertUint("data", e.data);
        if (e.devid !== undefined) assertUint("devid", e.devid);
        return e;
      }
      throw new TypeError(`unknown GSI route type ${(e as { type: string }).type}`);
    });
    this.addon.setGsiRouting(this.assertOpen(), native);
  }

  /** Closes the vGIC's fds, the vCPUs and the VM. */
  override close(): void {
    this.gic?.close();
    super.close();
  }
}
