// Builds small VMs for the tests: RAM at 0, code at 0x1000, real-mode or 64-bit entry.
import { Kvm, type VcpuExitDispatch, type VcpuRunResult, type Vcpu, type Vm } from "../../src/index.js";
import { assemble } from "./assemble.js";

export const CODE = 0x1000;

export interface TestVm {
  kvm: Kvm;
  vm: Vm;
  vcpu: Vcpu;
  ram: Uint8Array;
  close(): void;
}

export function realModeVm(source: string, opts: { ramSize?: number; irqchip?: boolean } = {}): TestVm {
  const kvm = Kvm.open();
  const vm = kvm.createVm();
  const ram = vm.allocateMemory(opts.ramSize ?? 0x10000);
  vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0, memory: ram });
  if (opts.irqchip) vm.createIrqchip();
  ram.set(assemble(`.code16\n${source}`, CODE), CODE);
  const vcpu = vm.createVcpu(0);
  const s = vcpu.getSregs();
  vcpu.setSregs({ cs: { ...s.cs, base: 0, selector: 0 } });
  vcpu.setRegs({ rip: CODE, rflags: 2, rsp: 0x8000 });
  return { kvm, vm, vcpu, ram, close: () => { vm.close(); kvm.close(); } };
}

/** Records every exit; `stopOn` decides when a callback requests a stop. */
export class Recorder implements VcpuExitDispatch {
  readonly pios: Array<[number, number, boolean, number]> = [];
  readonly mmios: Array<[number, number, boolean, number, number]> = [];
  pioRead: (port: number, size: number) => number = () => 0;
  mmioRead: (addr: number, size: number) => number | bigint = () => 0;
  stopWhen: (kind: "pio" | "mmio", addr: number) => boolean = () => false;
  /** Set when a callback called requestStop (so a "yield" from it can be told from an event-loop yield). */
  stopped = false;

  constructor(private readonly vcpu: Vcpu) {}

  pio(port: number, size: 1 | 2 | 4, isWrite: boolean, value: number): number {
    this.pios.push([port, size, isWrite, value]);
    if (this.stopWhen("pio", port)) this.stop();
    return isWrite ? 0 : this.pioRead(port, size);
  }

  private stop(): void {
    this.stopped = true;
    this.vcpu.requestStop();
  }

  mmio(address: number, size: 1 | 2 | 4 | 8, isWrite: boolean, lo: number, hi: number): number | bigint {
    this.mmios.push([address, size, isWrite, lo, hi]);
    if (this.stopWhen("mmio", address)) this.stop();
    return isWrite ? 0 : this.mmioRead(address, size);
  }
}

/**
 * Runs until an exit other than an event-loop "yield" (the test worker's own IPC makes the loop busy at
 * times), or until a Recorder callback asked to stop. Synchronous: the event loop waits meanwhile.
 */
export function runSync(vcpu: Vcpu, dispatch: VcpuExitDispatch): VcpuRunResult {
  for (let i = 0; i < 100_000; i++) {
    const r = vcpu.run(dispatch);
    if (r.reason !== "yield") return r;
    if (dispatch instanceof Recorder && dispatch.stopped) {
      dispatch.stopped = false;
      return r;
    }
  }
  throw new Error("the guest kept yielding");
}
