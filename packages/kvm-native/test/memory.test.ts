import { fstatSync, readSync, writeSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { Kvm } from "../src/index.js";
import { assemble } from "./support/assemble.js";
import { Recorder, realModeVm, runSync, type TestVm } from "./support/guest.js";
import { kvmOk } from "./support/kvm.js";

describe.skipIf(!kvmOk)("guest memory and memslots (real /dev/kvm)", () => {
  let t: TestVm | undefined;
  afterEach(() => t?.close());

  it("shares guest RAM with JS without copies, in both directions and during a run", () => {
    t = realModeVm(`
      mov 0x2000, %al; out %al, $0x10     # a byte JS wrote before the run
      movb $0x99, 0x2001                   # a byte JS reads after the run
      out %al, $0x11                       # JS writes 0x2002 inside this callback
      mov 0x2002, %al; out %al, $0x12
      hlt`);
    const ram = t.ram;
    ram[0x2000] = 0x5c;
    const r = new Recorder(t.vcpu);
    const orig = r.pio.bind(r);
    r.pio = (port, size, isWrite, value) => {
      if (port === 0x11) {
        expect(ram[0x2001]).toBe(0x99); // the guest's store is visible at once
        ram[0x2002] = 0x3e;
      }
      return orig(port, size, isWrite, value);
    };
    expect(runSync(t.vcpu, r)).toEqual({ reason: "hlt" });
    expect(r.pios.filter((p) => p[0] !== 0x11).map((p) => p[3])).toEqual([0x5c, 0x3e]);
    expect(ram.byteOffset).toBe(0);
    expect(ram.buffer.byteLength).toBe(0x10000);
  });

  it("adds and removes a memslot while the guest runs: accesses switch between RAM and MMIO exits", () => {
    t = realModeVm(`
      mov $0x4000, %ax; mov %ax, %ds
      mov 0x10, %al; out %al, $0x12      # unmapped: MMIO exit
      out %al, $0x10                      # JS maps a slot at 0x40000
      mov 0x10, %al; out %al, $0x12      # RAM now
      out %al, $0x11                      # JS removes it
      mov 0x10, %al; out %al, $0x12      # MMIO again
      hlt`);
    const extra = t.vm.allocateMemory(0x1000);
    extra[0x10] = 0x77;
    const r = new Recorder(t.vcpu);
    r.mmioRead = () => 0xee;
    const orig = r.pio.bind(r);
    r.pio = (port, size, isWrite, value) => {
      if (port === 0x10) t!.vm.setMemoryRegion({ slot: 3, guestPhysAddr: 0x40000, memory: extra });
      if (port === 0x11) t!.vm.removeMemoryRegion(3);
      return orig(port, size, isWrite, value);
    };
    expect(runSync(t.vcpu, r)).toEqual({ reason: "hlt" });
    expect(r.pios.filter((p) => p[0] === 0x12).map((p) => p[3])).toEqual([0xee, 0x77, 0xee]);
    expect(r.mmios).toEqual([
      [0x40010, 1, false, 0, 0],
      [0x40010, 1, false, 0, 0],
    ]);
  });

  it("lets the guest read a read-only memslot but turns its writes into MMIO exits", () => {
    t = realModeVm(`
      mov $0x3000, %ax; mov %ax, %ds
      mov 0x20, %al; out %al, $0x10
      movb $0x42, 0x20
      mov 0x20, %al; out %al, $0x10
      hlt`);
    const rom = t.vm.allocateMemory(0x2000);
    rom[0x20] = 0xa7;
    t.vm.setMemoryRegion({ slot: 1, guestPhysAddr: 0x30000, memory: rom, readonly: true });
    const r = new Recorder(t.vcpu);
    expect(runSync(t.vcpu, r)).toEqual({ reason: "hlt" });
    expect(r.mmios).toEqual([[0x30020, 1, true, 0x42, 0]]);
    expect(r.pios.map((p) => p[3])).toEqual([0xa7, 0xa7]);
    expect(rom[0x20]).toBe(0xa7);
  });

  it("reports the pages the guest wrote in the dirty log, and resets it on read", () => {
    t = realModeVm(`
      mov $0x2000, %ax; mov %ax, %ds
      movb $1, 0x3004
      movw $2, 0x5ffe
      mov 0x7000, %al
      hlt
      movb $3, 0x0000
      hlt`);
    const mem = t.vm.allocateMemory(0x10000);
    t.vm.setMemoryRegion({ slot: 2, guestPhysAddr: 0x20000, memory: mem, logDirty: true });
    expect(Array.from(t.vm.getDirtyLog(2))).toEqual([0, 0]);
    expect(runSync(t.vcpu, new Recorder(t.vcpu))).toEqual({ reason: "hlt" });
    const log = t.vm.getDirtyLog(2);
    expect(log).toHaveLength(2); // 16 pages
    expect(Array.from(log)).toEqual([(1 << 3) | (1 << 5), 0]);
    expect(Array.from(t.vm.getDirtyLog(2))).toEqual([0, 0]);
    expect(runSync(t.vcpu, new Recorder(t.vcpu))).toEqual({ reason: "hlt" });
    expect(Array.from(t.vm.getDirtyLog(2))).toEqual([1, 0]);
  });

  it("validates memory sizes and alignment before calling KVM", () => {
    t = realModeVm(`hlt`);
    expect(() => t!.vm.allocateMemory(100)).toThrow(RangeError);
    expect(() => t!.vm.allocateMemory(0)).toThrow(RangeError);
    const m = t.vm.allocateMemory(0x2000);
    expect(() => t!.vm.setMemoryRegion({ slot: 5, guestPhysAddr: 0x123, memory: m })).toThrow(RangeError);
    expect(() => t!.vm.setMemoryRegion({ slot: 5, guestPhysAddr: 0x80000, memory: m.subarray(1, 0x1001) })).toThrow(RangeError);
    expect(() => t!.vm.setMemoryRegion({ slot: 5, guestPhysAddr: 0x80000, memory: new Uint8Array(0x1000) })).toThrow(RangeError);
    // a page-aligned subarray of native memory is fine
    t.vm.setMemoryRegion({ slot: 5, guestPhysAddr: 0x80000, memory: m.subarray(0x1000) });
    expect(() => t!.vm.getDirtyLog(5)).toThrow(/does not log dirty pages/);
  });
});

describe.skipIf(!kvmOk)("guest RAM backed by a memfd (real /dev/kvm)", () => {
  it("shares the guest's pages with anyone holding the fd: the guest's stores read back through the file, file writes reach the guest", () => {
    const kvm = Kvm.open();
    const vm = kvm.createVm();
    const ram = vm.allocateRam(0x20000, { chunkSize: 0x10000 });
    expect(fstatSync(ram.fd).size).toBe(0x20000);
    expect(ram.regions(0x1000_0000)[1]).toMatchObject({ gpa: 0x1001_0000, file: { fd: ram.fd, offset: 0x10000 } });
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0, memory: ram });
    const vcpu = vm.createVcpu(0);
    ram.chunks[0]!.set(assemble(".code16\nmov 0x3000, %al; out %al, $0x10\nmovb $0x77, 0x3001\nhlt", 0x1000), 0x1000);
    const sregs = vcpu.getSregs();
    vcpu.setSregs({ ...sregs, cs: { ...sregs.cs, base: 0, selector: 0 } });
    vcpu.setRegs({ ...vcpu.getRegs(), rip: 0x1000, rflags: 2 });
    writeSync(ram.fd, Uint8Array.of(0x42), 0, 1, 0x3000); // through the file, not the view
    const r = new Recorder(vcpu);
    expect(runSync(vcpu, r)).toEqual({ reason: "hlt" });
    expect(r.pios).toEqual([[0x10, 1, true, 0x42]]);
    const back = new Uint8Array(1);
    readSync(ram.fd, back, 0, 1, 0x3001);
    expect(back[0]).toBe(0x77);
    const fd = ram.fd;
    vm.close();
    kvm.close();
    expect(() => fstatSync(fd)).toThrow(/EBADF/); // the VM closed its memfd
    expect(ram.chunks[0]![0x3001]).toBe(0x77); // the mapping outlives the fd
  });
});
