import { describe, expect, it } from "vitest";
import { KvmIoEvents, KvmMemoryMapper } from "../src/index.js";

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
    const events = new KvmIoEvents(vm);
    let notified = 0;
    const h = events.add({ space: "mmio", address: 0xc0001000, size: 4, datamatch: 2 }, () => notified++);
    signal?.();
    h.remove();
    h.remove();
    expect(notified).toBe(1);
    expect(log).toEqual(["ioeventfd mmio c0001000 4 2", "unref", "deassign", "close fd"]);
  });
});
