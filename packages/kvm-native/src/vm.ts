// The x86_64 VM: the in-kernel PIC/IOAPIC/PIT irqchip, the TSS and identity-map pages VMX needs, GSI lines and
// routes, MSIs, and x86 vCPUs.
import { assertAddress, assertUint, VmBase } from "./vm-base.js";
import { x86Native, type NativeX86 } from "./native.js";
import { Vcpu } from "./vcpu.js";

export type GsiRoute =
  | { gsi: number; type: "irqchip"; irqchip: number; pin: number }
  | { gsi: number; type: "msi"; address: number; data: number };

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
    return this.registerVcpu(id, new Vcpu(new this.addon.VcpuHandle(fd, this.vcpuMmapSize, id), id, this));
  }
}
