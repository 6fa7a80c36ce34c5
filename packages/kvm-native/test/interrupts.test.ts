import { EventFd } from "@vmm/host-io";
import { afterEach, describe, expect, it } from "vitest";
import { Recorder, type TestVm } from "./support/guest.js";
import { IRQ_GUEST } from "./support/irq-guest.js";
import { kvmOk } from "./support/kvm.js";
import { longModeVm } from "./support/long-mode.js";
import { runUntil } from "./support/run-until.js";

const MSI_ADDR = 0xfee00000;

/** Runs the interrupt guest; `inject` runs in the "ready" callback; resolves with the vectors the guest took. */
async function deliver(t: TestVm, inject: () => void): Promise<number[]> {
  const r = new Recorder(t.vcpu);
  r.pio = function (port, size, isWrite, value) {
    if (port === 0x10) inject();
    return Recorder.prototype.pio.call(this, port, size, isWrite, value);
  };
  r.stopWhen = (_k, port) => port === 0x11;
  await runUntil(t.vcpu, r, () => r.stopped, { timeoutMs: 8000 });
  return r.pios.filter((p) => p[0] === 0x11).map((p) => p[3]);
}

describe.skipIf(!kvmOk)("interrupts into a 64-bit guest IDT (real /dev/kvm)", () => {
  let t: TestVm | undefined;
  const fds: EventFd[] = [];
  afterEach(() => {
    t?.close();
    for (const f of fds.splice(0)) f.close();
  });

  it("delivers KVM_SIGNAL_MSI to the LAPIC vector", async () => {
    t = longModeVm(IRQ_GUEST, { irqchip: true });
    let delivered = -1;
    const vectors = await deliver(t, () => { delivered = t!.vm.signalMsi(MSI_ADDR, 0x40); });
    expect(vectors).toEqual([0x40]);
    expect(delivered).toBe(1);
  });

  it("delivers an irqfd write through an MSI GSI route", async () => {
    t = longModeVm(IRQ_GUEST, { irqchip: true });
    t.vm.setGsiRouting([{ gsi: 24, type: "msi", address: MSI_ADDR, data: 0x41 }]);
    const efd = new EventFd();
    fds.push(efd);
    t.vm.irqfd(efd, 24);
    expect(await deliver(t, () => efd.write(1))).toEqual([0x41]);
  });

  it("raises an IOAPIC edge line with irqLine", async () => {
    t = longModeVm(IRQ_GUEST, { irqchip: true });
    const vectors = await deliver(t, () => {
      t!.vm.irqLine(4, true);
      t!.vm.irqLine(4, false);
    });
    expect(vectors).toEqual([0x43]);
  });

  it("signals the resample eventfd of a level-triggered irqfd after the guest's EOI", async () => {
    t = longModeVm(IRQ_GUEST, { irqchip: true });
    const trigger = new EventFd();
    const resample = new EventFd();
    fds.push(trigger, resample);
    const resampled = new Promise<bigint>((resolve) => resample.onSignal(resolve));
    const reg = t.vm.irqfd(trigger, 5, resample);
    expect(await deliver(t, () => trigger.write(1))).toEqual([0x42]);
    expect(await resampled).toBe(1n);
    reg.remove();
    reg.remove(); // idempotent
  });

  it("validates routing entries", () => {
    t = longModeVm(IRQ_GUEST, { irqchip: true });
    expect(() => t!.vm.setGsiRouting([{ gsi: 1, type: "irqchip", irqchip: 7, pin: 1 }])).toThrow(RangeError);
    expect(() => t!.vm.setGsiRouting([{ gsi: 1, type: "bogus" } as never])).toThrow(TypeError);
    t.vm.setGsiRouting([
      { gsi: 4, type: "irqchip", irqchip: 2, pin: 4 },
      { gsi: 30, type: "msi", address: MSI_ADDR, data: 0x40 },
    ]);
  });
});
