// The VM-wide state KVM keeps on x86_64: the in-kernel PICs and IOAPIC, the PIT, and the kvmclock base.
import { SnapshotError, decodeBytes, encodeBytes, stateData, type DeviceState } from "@vmm/core";
import { stateBigInt } from "./fields.js";

/** What this module needs of a VM (`@vmm/kvm-native`'s Vm). */
export interface X86VmStateAccess {
  getIrqchip(chip: 0 | 1 | 2): Uint8Array;
  setIrqchip(chip: 0 | 1 | 2, bytes: Uint8Array): void;
  getPit2(): Uint8Array;
  setPit2(bytes: Uint8Array): void;
  getClock(): { clock: bigint; flags: number };
  setClock(clock: bigint): void;
}

const VERSION = 1;
const CHIPS = { picMaster: 0, picSlave: 1, ioapic: 2 } as const;

export function saveX86Kvm(vm: X86VmStateAccess): DeviceState {
  const chips = Object.fromEntries(Object.entries(CHIPS).map(([name, chip]) => [name, encodeBytes(vm.getIrqchip(chip))]));
  return { version: VERSION, data: { ...chips, pit: encodeBytes(vm.getPit2()), clock: String(vm.getClock().clock) } };
}

/** The interrupt controllers and PIT; the clock is set by `restoreX86Clock`, last, just before the vCPUs run. */
export function restoreX86Kvm(vm: X86VmStateAccess, state: DeviceState): void {
  const what = "kvm (irqchip, PIT)";
  const d = stateData(state, what, VERSION);
  const kvmStep = (name: string, apply: () => void) => {
    try {
      apply();
    } catch (error) {
      throw new SnapshotError(`${what}: KVM refused the saved ${name}: ${(error as Error).message}`, { cause: error });
    }
  };
  for (const [name, chip] of Object.entries(CHIPS)) {
    const bytes = decodeBytes(d[name], `${what}: ${name}`);
    kvmStep(name, () => vm.setIrqchip(chip, bytes));
  }
  const pit = decodeBytes(d.pit, `${what}: pit`);
  kvmStep("PIT", () => vm.setPit2(pit));
}

/** Sets kvmclock to where it was when the snapshot was taken: the guest's clock goes on from there. */
export function restoreX86Clock(vm: X86VmStateAccess, state: DeviceState): void {
  const clock = stateBigInt(stateData(state, "kvm clock", VERSION), "clock", "kvm clock");
  vm.setClock(clock);
}
