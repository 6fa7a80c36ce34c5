import { describe, expect, it } from "vitest";
import { KvmIoEvents, KvmMemoryMapper, MsiRouter } from "./internals.js";

function fakeVm() {
  const calls: string[] = [];
  return {
    calls,
    allocateMemory: (size: number) => new Uint8Array(size),
    setMemoryRegion: (r: { slot: number; guestPhysAddr: number; memory: Uint8Array; readonly?: boolean; logDirty?: boolean }) =>
      void calls.push(`set ${r.slot} ${r.guestPhysAddr.toString(16)} ${r.memory.length} ro=${!!r.readonly} dirty=${!!r.logDirty}`),
    removeMemoryRegion: (slot: number) => void calls.push(`remove ${slot}`),
    getDirtyLog: (slot: number) => new Uint8Array([slot]),
  };
}

describe("KvmMemoryMapper", () => {
  it("maps page-aligned memory into free slots above the RAM slots and reuses freed slots", () => {
    const vm = fakeVm();
    const mapper = new KvmMemoryMapper(vm, 8);
    const a = mapper.map(0xc0000000, mapper.allocate(0x2000), { readonly: true });
    const b = mapper.map(0xc0010000, mapper.allocate(0x1000), { dirtyLog: true });
    expect(b.dirtyPages?.()).toEqual(new Uint8Array([9]));
    a.remove();
    a.remove(); // harmless
    mapper.map(0xc0020000, mapper.allocate(0x1000));
    expect(vm.calls).toEqual([
      "set 8 c0000000 8192 ro=true dirty=false",
      "set 9 c0010000 4096 ro=false dirty=true",
      "remove 8",
      "set 8 c0020000 4096 ro=false dirty=false",
    ]);
  });

  it("refuses unaligned mappings and sizes", () => {
    const mapper = new KvmMemoryMapper(fakeVm(), 8);
    expect(() => mapper.allocate(100)).toThrow(/multiple of 4 KiB/);
    expect(() => mapper.map(0xc0000800, new Uint8Array(0x1000))).toThrow(/page-aligned/);
  });
});

describe("KvmIoEvents", () => {
  it("registers an ioeventfd per request, watches it unref'd, and removes both once", () => {
    const log: string[] = [];
    let signal: (() => void) | undefined;
    const vm = {
      createEventFd: () =>
        ({
          onSignal: (cb: () => void) => void (signal = cb),
          unref: () => void log.push("unref"),
          close: () => void log.push("close fd"),
        }) as never,
      ioeventfd: (_fd: unknown, r: { space: string; address: number; size: number; datamatch?: number | bigint }) => {
        log.push(`ioeventfd ${r.space} ${r.address.toString(16)} ${r.size} ${r.datamatch}`);
        return { remove: () => void log.push("deassign") };
      },
    };
    const events = new KvmIoEvents(vm, vm.createEventFd);
    let notified = 0;
    const h = events.add({ space: "mmio", address: 0xc0001000, size: 4, datamatch: 2 }, () => notified++);
    signal?.();
    h.remove();
    h.remove();
    expect(notified).toBe(1);
    expect(log).toEqual(["ioeventfd mmio c0001000 4 2", "unref", "deassign", "close fd"]);
  });

  it("registers an eventfd the caller owns (a data-plane worker's) without watching or closing it; close removes it", () => {
    const log: string[] = [];
    const vm = {
      ioeventfd: (fd: unknown, r: { space: string; address: number; size: number }) => {
        log.push(`ioeventfd fd=${String(fd)} ${r.space} ${r.address.toString(16)} ${r.size}`);
        return { remove: () => void log.push(`deassign fd=${String(fd)}`) };
      },
    };
    const events = new KvmIoEvents(vm, () => {
      throw new Error("no eventfd of its own is made");
    });
    const h = events.addEventFd({ space: "mmio", address: 0xc0002000, size: 2 }, 17);
    events.addEventFd({ space: "pio", address: 0x6000, size: 0 }, 18);
    h.remove();
    h.remove();
    events.close();
    expect(log).toEqual(["ioeventfd fd=17 mmio c0002000 2", "ioeventfd fd=18 pio 6000 0", "deassign fd=17", "deassign fd=18"]);
  });
});

describe("MsiRouter", () => {
  it("keeps KVM's irqchip routes, adds MSI routes above the IOAPIC pins with an irqfd, reuses freed GSIs", () => {
    const tables: { gsi: number; type: string; address?: number; data?: number; irqchip?: number; pin?: number }[][] = [];
    const log: string[] = [];
    const vm = {
      setGsiRouting: (entries: never[]) => void tables.push(entries),
      createEventFd: () => ({ write: () => void log.push("write"), close: () => void log.push("close") }) as never,
      irqfd: (_fd: unknown, gsi: number) => (log.push(`irqfd ${gsi}`), { remove: () => void log.push(`unirqfd ${gsi}`) }),
    };
    const router = new MsiRouter(vm, vm.createEventFd);
    const a = router.add({ address: 0xfee00000, data: 0x41 });
    const b = router.add({ address: 0xfee01000, data: 0x42 });
    expect([a.gsi, b.gsi]).toEqual([24, 25]);
    const last = tables.at(-1)!;
    // GSI 4 goes to the master PIC pin 4 and IOAPIC pin 4; GSI 17 to the IOAPIC only.
    expect(last.filter((r) => r.gsi === 4)).toEqual([
      { gsi: 4, type: "irqchip", irqchip: 0, pin: 4 },
      { gsi: 4, type: "irqchip", irqchip: 2, pin: 4 },
    ]);
    expect(last.filter((r) => r.gsi === 17)).toEqual([{ gsi: 17, type: "irqchip", irqchip: 2, pin: 17 }]);
    expect(last.filter((r) => r.type === "msi")).toEqual([
      { gsi: 24, type: "msi", address: 0xfee00000, data: 0x41 },
      { gsi: 25, type: "msi", address: 0xfee01000, data: 0x42 },
    ]);
    a.update({ address: 0xfee00000, data: 0x51 });
    expect(tables.at(-1)!.find((r) => r.gsi === 24)).toMatchObject({ data: 0x51 });
    a.trigger();
    a.remove();
    a.remove();
    expect(tables.at(-1)!.some((r) => r.gsi === 24)).toBe(false);
    expect(router.add({ address: 0xfee00000, data: 0x43 }).gsi).toBe(24);
    expect(log).toEqual(["irqfd 24", "irqfd 25", "write", "unirqfd 24", "close", "irqfd 24"]);
  });

  it("writes another machine's table: its fixed routes, its first MSI GSI and its route for each message", () => {
    type Route = { gsi: number; pin?: number; devid?: number };
    const tables: Route[][] = [];
    const vm = {
      setGsiRouting: (entries: Route[]) => void tables.push(entries),
      createEventFd: () => ({ write: () => {}, close: () => {} }) as never,
      irqfd: () => ({ remove: () => {} }),
    };
    const table = {
      fixed: () => [{ gsi: 0, pin: 0 }],
      firstMsiGsi: 96,
      msi: (gsi: number, m: { data: number }) => ({ gsi, devid: m.data * 2 }),
    };
    const router = new MsiRouter<Route>(vm, vm.createEventFd, table);
    expect(router.add({ address: 0x1000, data: 7 }).gsi).toBe(96);
    expect(tables).toEqual([[{ gsi: 0, pin: 0 }, { gsi: 96, devid: 14 }]]);
  });
});
