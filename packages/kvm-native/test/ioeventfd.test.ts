import { EventFd } from "@vmm/host-io";
import { afterEach, describe, expect, it } from "vitest";
import { CODE, Recorder, realModeVm, runSync, type TestVm } from "./support/guest.js";
import { kvmOk } from "./support/kvm.js";

const GUEST = `
  mov $0x1234, %ax; out %ax, $0x60        # matches the PIO datamatch: no exit
  mov $0x0001, %ax; out %ax, $0x60        # does not match: dispatched
  mov $0x2000, %ax; mov %ax, %ds
  movl $0xabcd, 0x40                       # MMIO ioeventfd, any value
  out %al, $0x70
  hlt`;

describe.skipIf(!kvmOk)("ioeventfd (real /dev/kvm)", () => {
  let t: TestVm | undefined;
  const fds: EventFd[] = [];
  afterEach(() => {
    t?.close();
    for (const f of fds.splice(0)) f.close();
  });

  it("signals the eventfd for matching port and MMIO writes without a dispatch call, until removed", () => {
    t = realModeVm(GUEST);
    const pioFd = new EventFd();
    const mmioFd = new EventFd();
    fds.push(pioFd, mmioFd);
    const pioReg = t.vm.ioeventfd(pioFd, { space: "pio", address: 0x60, size: 2, datamatch: 0x1234 });
    // a plain fd number works as well as an object with `fd`
    const mmioReg = t.vm.ioeventfd(mmioFd.fd, { space: "mmio", address: 0x20040, size: 4 });
    const r = new Recorder(t.vcpu);
    expect(runSync(t.vcpu, r)).toEqual({ reason: "hlt" });
    expect(r.pios).toEqual([
      [0x60, 2, true, 0x0001],
      [0x70, 1, true, 0x00],
    ]);
    expect(r.mmios).toEqual([]);
    expect(pioFd.read()).toBe(1n);
    expect(mmioFd.read()).toBe(1n);
    expect(pioFd.read()).toBeNull();

    pioReg.remove();
    mmioReg.remove();
    const again = new Recorder(t.vcpu);
    t.vcpu.setRegs({ rip: CODE });
    expect(runSync(t.vcpu, again)).toEqual({ reason: "hlt" });
    expect(again.pios.map((p) => p[3])).toEqual([0x1234, 0x0001, 0x00]);
    expect(again.mmios).toEqual([[0x20040, 4, true, 0xabcd, 0]]);
    expect(pioFd.read()).toBeNull();
  });

  it("reports the counter through onSignal on the event loop", async () => {
    t = realModeVm(GUEST);
    const efd = new EventFd();
    fds.push(efd);
    t.vm.ioeventfd(efd, { space: "pio", address: 0x60, size: 2 });
    const signalled = new Promise<bigint>((resolve) => efd.onSignal(resolve));
    expect(runSync(t.vcpu, new Recorder(t.vcpu))).toEqual({ reason: "hlt" });
    expect(await signalled).toBe(2n);
  });

  it("rejects bad ranges, bad fds and duplicate registrations", () => {
    t = realModeVm(GUEST);
    const efd = new EventFd();
    fds.push(efd);
    expect(() => t!.vm.ioeventfd(-1, { space: "pio", address: 0x60, size: 2 })).toThrow(TypeError);
    expect(() => t!.vm.ioeventfd({} as never, { space: "pio", address: 0x60, size: 2 })).toThrow(TypeError);
    expect(() => t!.vm.irqfd(1.5, 5)).toThrow(TypeError);
    expect(() => t!.vm.ioeventfd(efd, { space: "pio", address: 0x60, size: 8 })).toThrow(RangeError);
    expect(() => t!.vm.ioeventfd(efd, { space: "pio", address: 0x10000, size: 1 })).toThrow(RangeError);
    expect(() => t!.vm.ioeventfd(efd, { space: "mmio", address: 0x1000, size: 3 as never })).toThrow(RangeError);
    t.vm.ioeventfd(efd, { space: "mmio", address: 0x20040, size: 4, datamatch: 7n });
    expect(() => t!.vm.ioeventfd(efd, { space: "mmio", address: 0x20040, size: 4, datamatch: 7n })).toThrow(
      expect.objectContaining({ name: "KvmError", errno: "EEXIST", syscall: "KVM_IOEVENTFD" }),
    );
  });
});
