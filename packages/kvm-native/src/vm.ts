// The x86_64 VM: the in-kernel PIC/IOAPIC/PIT irqchip and its state, kvmclock, the TSS and identity-map pages VMX
// needs, GSI lines and routes, MSIs, and x86 vCPUs.
import { KvmCap, X86StateSize } from "./constants.js";
import { assertAddress, assertUint, VmBase } from "./vm-base.js";
import { x86Native, type NativeX86 } from "./native.js";
import { assertStateBytes, Vcpu } from "./vcpu.js";

export type GsiRoute =
  | { gsi: number; type: "irqchip"; irqchip: number; pin: number }
  | { gsi: number; type: "msi"; address: number; data: number };

/** Irqchip.PIC_MASTER, PIC_SLAVE or IOAPIC. */
export type IrqchipId = 0 | 1 | 2;

/** An x86_64 KVM virtual machine (Kvm.createVm()). */
export class Vm extends VmBase {
  /** @internal */
  declare protected readonly addon: NativeX86;

  /** @internal Use Kvm.createVm(). */
  constructor(fd: number, vcpuMmapSize: number) {
    super(fd, vcpuMmapSize, x86Native("an x86_64 Vm"));
  }

  setTssAddr(addr: number): void {
    assertAddress("addr", addr);
    this.addon.setTssAddr(this.assertOpen(), addr);
  }

  setIdentityMapAddr(addr: number): void {
    assertAddress("addr", addr);
    this.addon.setIdentityMapAddr(this.assertOpen(), addr);
  }

  /** In-kernel PIC, IOAPIC and LAPICs (KVM_CREATE_IRQCHIP); call before creating vCPUs. */
  createIrqchip(): void {
    this.addon.createIrqchip(this.assertOpen());
  }

  /** In-kernel PIT (KVM_CREATE_PIT2); needs the irqchip. */
  createPit2(): void {
    this.addon.createPit2(this.assertOpen());
  }

  /**
   * The state of one in-kernel irqchip (KVM_GET_IRQCHIP): `chip` is Irqchip.PIC_MASTER, PIC_SLAVE or IOAPIC; the
   * 512 bytes (X86StateSize.IRQCHIP) of struct kvm_irqchip's union, opaque.
   */
  getIrqchip(chip: IrqchipId): Uint8Array {
    assertUint("irqchip", chip, 2);
    return this.addon.getIrqchip(this.assertOpen(), chip);
  }

  setIrqchip(chip: IrqchipId, state: Uint8Array): void {
    assertUint("irqchip", chip, 2);
    assertStateBytes(`irqchip ${chip} state`, state, X86StateSize.IRQCHIP);
    this.addon.setIrqchip(this.assertOpen(), chip, state);
  }

  /** The in-kernel PIT's state (KVM_GET_PIT2: struct kvm_pit_state2, X86StateSize.PIT2 opaque bytes). */
  getPit2(): Uint8Array {
    return this.addon.getPit2(this.assertOpen());
  }

  setPit2(state: Uint8Array): void {
    assertStateBytes("PIT state", state, X86StateSize.PIT2);
    this.addon.setPit2(this.assertOpen(), state);
  }

  /**
   * The VM's kvmclock (KVM_GET_CLOCK): `clock` in ns; `flags` are KVM_CLOCK_* (2: TSC_STABLE, the clock is the same
   * on every vCPU).
   */
  getClock(): { clock: bigint; flags: number } {
    return this.addon.getClock(this.assertOpen());
  }

  /** KVM_SET_CLOCK: the guest's kvmclock goes on from `clock` ns (a restored guest sees no jump back). */
  setClock(clock: bigint): void {
    if (typeof clock !== "bigint" || clock < 0n || clock >= 1n << 64n) throw new RangeError("clock must be a bigint of ns in [0, 2^64)");
    this.addon.setClock(this.assertOpen(), clock);
  }

  irqLine(gsi: number, level: boolean): void {
    assertUint("gsi", gsi);
    this.addon.irqLine(this.assertOpen(), gsi, level ? 1 : 0);
  }

  /** KVM_SIGNAL_MSI; returns how many CPUs took it (0: blocked). */
  signalMsi(address: number, data: number): number {
    assertAddress("address", address);
    assertUint("data", data);
    return this.addon.signalMsi(this.assertOpen(), address, data);
  }

  /** KVM_SET_GSI_ROUTING replaces the whole table (include the irqchip routes you still want). */
  setGsiRouting(entries: GsiRoute[]): void {
    for (const e of entries) {
      assertUint("gsi", e.gsi);
      if (e.type === "msi") {
        assertAddress("address", e.address);
        assertUint("data", e.data);
      } else if (e.type === "irqchip") {
        assertUint("irqchip", e.irqchip, 2);
        assertUint("pin", e.pin, 23);
      } else {
        throw new TypeError(`unknown GSI route type ${(e as { type: string }).type}`);
      }
    }
    this.addon.setGsiRouting(this.assertOpen(), entries);
  }

  createVcpu(id: number): Vcpu {
    const fd = this.createVcpuFd(id);
    const xsaveBytes = () => Math.max(X86StateSize.XSAVE, this.checkExtension(KvmCap.XSAVE2));
    return this.registerVcpu(id, new Vcpu(new this.addon.VcpuHandle(fd, this.vcpuMmapSize, id), id, this, xsaveBytes));
  }
}
