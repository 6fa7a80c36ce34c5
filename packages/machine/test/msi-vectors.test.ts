import { createMmioSpace, createPortIoSpace, MemoryLogger, type MsiMessage } from "@vmm/core";
import { MsiCapability, MsixCapability, PciBus, PciFunction } from "@vmm/pci";
import { describe, expect, it } from "vitest";
import { KvmMsiVectors, MsiRouter } from "./internals.js";

type Route = { gsi: number; type: string; address?: number; data?: number };

function fakeVm(options: { failRouting?: () => boolean } = {}) {
  const tables: Route[][] = [];
  const writes: number[] = [];
  const log: string[] = [];
  const attempts = { routing: 0 };
  const vm = {
    setGsiRouting: (entries: never[]) => {
      attempts.routing++;
      if (options.failRouting?.()) throw new Error("EINVAL");
      tables.push(entries);
    },
    createEventFd: () => {
      let gsi = -1;
      return { fd: 99, write: () => void writes.push(gsi), close: () => void log.push("close"), set gsi(g: number) { gsi = g; } } as never;
    },
    irqfd: (fd: unknown, gsi: number) => {
      (fd as { gsi: number }).gsi = gsi;
      log.push(`irqfd ${gsi} after ${tables.length} tables`);
      return { remove: () => void log.push(`unirqfd ${gsi}`) };
    },
  };
  const msiRoutes = (t: Route[] | undefined) => (t ?? []).filter((r) => r.type === "msi").map((r) => [r.gsi, r.data]);
  return { vm, tables, writes, log, msiRoutes, attempts };
}

/** A driver's view of the table: 32-bit writes to entry fields and the control word. */
function driver(cap: MsixCapability) {
  const entry = (v: number, field: number, value: number) => cap.tableHandler.write(v * 16 + field, 4, value);
  return {
    program: (v: number, data: number) => {
      entry(v, 0, 0xfee00000);
      entry(v, 4, 0);
      entry(v, 8, data);
    },
    mask: (v: number, on: boolean) => entry(v, 12, on ? 1 : 0),
    data: (v: number, data: number) => entry(v, 8, data),
    control: (enable: boolean, functionMask: boolean) => {
      cap.body[1] = (enable ? 0x80 : 0) | (functionMask ? 0x40 : 0);
      cap.onWrite(0, 2, 0);
    },
  };
}

function setup(vectors = 3, fail?: () => boolean) {
  const kvm = fakeVm({ failRouting: fail });
  const router = new MsiRouter(kvm.vm, kvm.vm.createEventFd);
  const cap = new MsixCapability({ vectors, tableBar: 0 });
  const signalled: MsiMessage[] = [];
  const logger = new MemoryLogger();
  const factory = new KvmMsiVectors(router, { signal: (m) => void signalled.push(m) }, logger);
  const irq = factory.create("dev MSI-X", cap.vectors);
  cap.connect(irq); // what PciFunction does at attach
  return { ...kvm, router, cap, irq, factory, signalled, logger, d: driver(cap) };
}

describe("KvmMsiVectors (MSI-X)", () => {
  it("creates routes only for deliverable vectors, in one routing rewrite per config write, irqfds after the table", () => {
    const t = setup();
    t.d.program(0, 0x41);
    t.d.program(1, 0x42);
    t.d.mask(0, false);
    t.d.mask(1, false);
    expect(t.tables).toHaveLength(0); // MSI-X still off: field-by-field writes cost nothing
    t.d.control(true, false);
    expect(t.tables).toHaveLength(1);
    expect(t.msiRoutes(t.tables[0])).toEqual([[24, 0x41], [25, 0x42]]);
    expect(t.log).toEqual(["irqfd 24 after 1 tables", "irqfd 25 after 1 tables"]);
    t.d.control(true, false); // nothing changed: no rewrite
    t.d.data(2, 0x43); // masked vector: no route yet
    expect(t.tables).toHaveLength(1);
    t.cap.notify(1);
    t.cap.notify(0);
    expect(t.writes).toEqual([25, 24]);
    expect(t.signalled).toEqual([]);
  });

  it("updates a route when the message changes, keeps pending/mask semantics, and delivers on unmask", () => {
    const t = setup();
    t.d.program(0, 0x41);
    t.d.control(true, false);
    t.cap.notify(0); // masked: pending, nothing written
    expect(t.writes).toEqual([]);
    expect(t.cap.pending(0)).toBe(true);
    t.d.mask(0, false); // the capability flushes before it reports the write: the route is made on demand
    expect(t.writes).toEqual([24]);
    expect(t.tables).toHaveLength(1);
    t.d.data(0, 0x42);
    expect(t.msiRoutes(t.tables.at(-1))).toEqual([[24, 0x42]]);
    t.d.data(0, 0x42); // same message: no rewrite
    expect(t.tables).toHaveLength(2);
    t.d.control(true, true);
    t.cap.notify(0);
    expect(t.writes).toEqual([24]);
    t.d.control(true, false);
    expect(t.writes).toEqual([24, 24]);
    t.d.control(false, false);
    t.cap.notify(0); // MSI-X off: dropped
    expect(t.writes).toEqual([24, 24]);
    expect(t.signalled).toEqual([]);
  });

  it("vectors sharing a message both reach a route after either changes", () => {
    const t = setup();
    t.d.program(0, 0x41);
    t.d.program(1, 0x41);
    t.d.mask(0, false);
    t.d.mask(1, false);
    t.d.control(true, false);
    t.d.data(0, 0x50);
    t.cap.notify(1);
    t.cap.notify(0);
    expect(t.writes).toEqual([25, 24]);
  });

  it("falls back to KVM_SIGNAL_MSI when routing fails, and removes its routes on close", () => {
    let fail = false;
    const t = setup(2, () => fail);
    t.d.program(0, 0x41);
    t.d.mask(0, false);
    t.d.control(true, false);
    expect(t.router.size).toBe(1);
    fail = true;
    t.d.data(0, 0x42); // update fails: the vector loses its route
    t.cap.notify(0);
    expect(t.signalled).toEqual([{ address: 0xfee00000, data: 0x42 }]);
    expect(t.irq.fallbacks).toBe(1);
    const attempts = t.attempts.routing;
    t.cap.notify(0); // the failed message is not retried on every delivery
    expect(t.attempts.routing).toBe(attempts);
    expect(t.irq.fallbacks).toBe(2);
    expect(t.logger.lines.filter((l) => l.includes("falling back"))).toHaveLength(1);
    fail = false;
    t.d.data(0, 0x44); // a new message is tried again
    t.cap.notify(0);
    expect(t.writes).toEqual([24]);
    t.d.program(1, 0x43);
    t.d.mask(1, false);
    expect(t.router.size).toBe(2);
    t.irq.close();
    expect(t.router.size).toBe(0);
    t.cap.notify(1);
    expect(t.signalled.at(-1)).toEqual({ address: 0xfee00000, data: 0x43 });
  });
});

describe("KvmMsiVectors on a PCI bus", () => {
  it("routes multi-message MSI vectors through irqfds, exposes their eventfds while deliverable, and detach removes them", () => {
    const kvm = fakeVm();
    const router = new MsiRouter(kvm.vm, kvm.vm.createEventFd);
    const signalled: MsiMessage[] = [];
    const factory = new KvmMsiVectors(router, { signal: (m) => void signalled.push(m) }, new MemoryLogger());
    const bus = new PciBus({
      pio: createPortIoSpace(),
      mmio: createMmioSpace(),
      msiVectors: factory,
      irq: () => ({ level: false, set: () => {} }),
      windows: { io: { base: 0x6200, size: 0x2000 }, mem32: { base: 0xd200_0000, size: 0x0100_0000 } },
    });
    const fn = new PciFunction({ name: "msi-dev", vendorId: 1, deviceId: 2, classCode: 0 });
    const msi = new MsiCapability({ vectors: 4 });
    const at = fn.addCapability(msi);
    bus.attach(fn);
    const w = (o: number, s: 1 | 2 | 4, v: number) => bus.configWrite({ device: 1 }, at + o, s, v);
    bus.configWrite({ device: 1 }, 0x04, 2, 0x0004); // Bus Master Enable
    w(4, 4, 0xfee0_0000);
    w(0xc, 2, 0x40);
    const [set] = bus.msiVectorSets(fn);
    expect(set!.vector(1).eventFd).toBeUndefined();
    w(2, 2, 0x0021); // enable with MME = 2 (4 vectors): one routing rewrite
    expect(kvm.tables).toHaveLength(1);
    expect(kvm.msiRoutes(kvm.tables[0])).toEqual([[24, 0x40], [25, 0x41], [26, 0x42], [27, 0x43]]);
    expect(set!.vector(1).eventFd).toBeTypeOf("number");
    msi.notify(2);
    expect(kvm.writes).toEqual([26]);
    w(2, 2, 0); // disabled: routes stay, eventfds are withdrawn
    expect(set!.vector(1).eventFd).toBeUndefined();
    expect(router.size).toBe(4);
    bus.detach(fn);
    expect(router.size).toBe(0);
    expect(signalled).toEqual([]);
  });
});

describe("MsiRouter.batch", () => {
  it("rewrites the table once for many changes, nested batches included", () => {
    const t = fakeVm();
    const router = new MsiRouter(t.vm);
    const a = router.add({ address: 0xfee00000, data: 1 });
    router.batch(() => {
      a.update({ address: 0xfee00000, data: 2 });
      router.batch(() => router.add({ address: 0xfee00000, data: 3 }));
      expect(t.tables).toHaveLength(1);
    });
    expect(t.tables).toHaveLength(2);
    expect(router.commits).toBe(2);
    expect(t.msiRoutes(t.tables[1])).toEqual([[24, 2], [25, 3]]);
    router.batch(() => undefined);
    expect(router.commits).toBe(2);
  });
});
