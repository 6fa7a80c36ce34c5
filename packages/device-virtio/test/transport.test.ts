import { describe, expect, it } from "vitest";
import { bit, FeatureBit, NO_VECTOR, Status } from "../src/constants.js";
import { VirtioRng } from "../src/devices/rng.js";
import { ALL_BUT, C, setupTransport } from "./harness.js";

describe("virtio-pci common configuration (modern)", () => {
  it("shows the reset values: queues, sizes, vectors, notify offsets, features by select", () => {
    const { driver } = setupTransport(new VirtioRng());
    expect(driver.r(C.NUM_QUEUES, 2)).toBe(1);
    expect(driver.r(C.Q_SIZE, 2)).toBe(256);
    expect(driver.r(C.Q_VECTOR, 2)).toBe(NO_VECTOR);
    expect(driver.r(C.MSIX_CONFIG, 2)).toBe(NO_VECTOR);
    expect(driver.r(C.Q_NOTIFY_OFF, 2)).toBe(0);
    expect(driver.status()).toBe(0);
    const f = driver.deviceFeatures();
    expect(f & bit(FeatureBit.VERSION_1)).toBeTruthy();
    expect(f & bit(FeatureBit.RING_EVENT_IDX)).toBeTruthy();
    expect(f & bit(FeatureBit.RING_INDIRECT_DESC)).toBeTruthy();
    driver.w(C.DF_SELECT, 4, 2);
    expect(driver.r(C.DF, 4)).toBe(0);
  });

  it("accepts features that were offered and include VERSION_1", () => {
    const { driver } = setupTransport(new VirtioRng());
    expect(driver.init()).toBe(true);
    expect(driver.status()).toBe(Status.ACKNOWLEDGE | Status.DRIVER | Status.FEATURES_OK | Status.DRIVER_OK);
  });

  it("refuses FEATURES_OK for unoffered features or without VERSION_1", () => {
    const { driver, logger } = setupTransport(new VirtioRng());
    expect(driver.init({ features: (f) => f | bit(40) })).toBe(false);
    expect(driver.init({ features: (f) => ALL_BUT(f, FeatureBit.VERSION_1) })).toBe(false);
    expect(logger.lines.join("\n")).toMatch(/unoffered features 0x10000000000[\s\S]*VERSION_1/);
  });

  it("replaces a feature word on each write instead of OR-accumulating", () => {
    const { driver } = setupTransport(new VirtioRng());
    driver.w(C.GF_SELECT, 4, 1);
    driver.w(C.GF, 4, 1);
    driver.w(C.GF, 4, 0);
    expect(driver.r(C.GF, 4)).toBe(0);
    driver.w(C.STATUS, 1, Status.ACKNOWLEDGE | Status.DRIVER | Status.FEATURES_OK);
    expect(driver.status() & Status.FEATURES_OK).toBe(0);
  });

  it.each([0x8000_0000, 0xffff_ffff, 0x8000_0001, 2])("feature select 0x%s (no such word): reads 0, writes ignored, no throw", (select) => {
    const { driver, transport } = setupTransport(new VirtioRng());
    driver.w(C.DF_SELECT, 4, select);
    expect(driver.r(C.DF_SELECT, 4)).toBe(select);
    expect(driver.r(C.DF, 4)).toBe(0);
    driver.w(C.GF_SELECT, 4, 0);
    driver.w(C.GF, 4, 0x3000_0000);
    driver.w(C.GF_SELECT, 4, select);
    expect(driver.r(C.GF_SELECT, 4)).toBe(select);
    driver.w(C.GF, 4, 0xffff_ffff);
    expect(driver.r(C.GF, 4)).toBe(0);
    expect(transport.driverFeatures).toBe(0x3000_0000n);
  });

  it("reads 32-bit registers with bit 31 set as unsigned numbers", () => {
    const { driver } = setupTransport(new VirtioRng());
    driver.w(C.Q_DESC, 4, 0x8000_0010);
    driver.w(C.Q_DESC + 4, 4, 0xffff_fff0);
    expect(driver.r(C.Q_DESC, 4)).toBe(0x8000_0010);
    expect(driver.r(C.Q_DESC + 4, 4)).toBe(0xffff_fff0);
    driver.w(C.GF_SELECT, 4, 0);
    driver.w(C.GF, 4, 0x8000_0000);
    expect(driver.r(C.GF, 4)).toBe(0x8000_0000);
  });

  it("honours smaller power-of-two queue sizes and refuses others; unknown queues read 0", () => {
    const { driver } = setupTransport(new VirtioRng());
    driver.w(C.Q_SIZE, 2, 16);
    expect(driver.r(C.Q_SIZE, 2)).toBe(16);
    driver.w(C.Q_SIZE, 2, 100);
    expect(driver.r(C.Q_SIZE, 2)).toBe(16);
    driver.w(C.Q_SIZE, 2, 512);
    expect(driver.r(C.Q_SIZE, 2)).toBe(16);
    driver.w(C.Q_SELECT, 2, 200);
    expect(driver.r(C.Q_SELECT, 2)).toBe(200);
    expect(driver.r(C.Q_SIZE, 2)).toBe(0);
    expect(driver.r(C.Q_VECTOR, 2)).toBe(NO_VECTOR);
  });

  it("reads back NO_VECTOR for vectors beyond the MSI-X table", () => {
    const { driver } = setupTransport(new VirtioRng()); // the sink has 4 vectors
    driver.w(C.MSIX_CONFIG, 2, 40);
    expect(driver.r(C.MSIX_CONFIG, 2)).toBe(NO_VECTOR);
    driver.w(C.Q_VECTOR, 2, 3);
    expect(driver.r(C.Q_VECTOR, 2)).toBe(3);
    driver.w(C.Q_VECTOR, 2, 4);
    expect(driver.r(C.Q_VECTOR, 2)).toBe(NO_VECTOR);
  });

  it("keeps 64-bit queue addresses and ignores layout writes once the queue is enabled", () => {
    const { driver } = setupTransport(new VirtioRng());
    driver.w(C.Q_DESC, 4, 0x1000);
    driver.w(C.Q_DESC + 4, 4, 0x2);
    expect(driver.r(C.Q_DESC, 4)).toBe(0x1000);
    expect(driver.r(C.Q_DESC + 4, 4)).toBe(2);
    driver.w(C.Q_ENABLE, 2, 1);
    driver.w(C.Q_DESC, 4, 0x5000);
    driver.w(C.Q_SIZE, 2, 8);
    expect(driver.r(C.Q_DESC, 4)).toBe(0x1000);
    expect(driver.r(C.Q_SIZE, 2)).toBe(256);
  });

  it("a status write of 0 clears everything: status, features, queues, vectors, ISR", () => {
    const { driver, transport, sink } = setupTransport(new VirtioRng());
    driver.init({ vectors: [2], configVector: 1 });
    const ring = driver.rings[0]!;
    ring.post([{ addr: driver.alloc.alloc(8), len: 8, write: true }]);
    driver.kick(0);
    expect(transport.isr.value).toBe(1);
    driver.w(C.STATUS, 1, 0);
    expect(driver.status()).toBe(0);
    expect(transport.isr.value).toBe(0);
    expect(sink.level).toBe(false);
    driver.w(C.GF_SELECT, 4, 1);
    expect(driver.r(C.GF, 4)).toBe(0);
    expect(driver.r(C.MSIX_CONFIG, 2)).toBe(NO_VECTOR);
    driver.w(C.Q_SELECT, 2, 0);
    expect(driver.r(C.Q_ENABLE, 2)).toBe(0);
    expect(driver.r(C.Q_DESC, 4)).toBe(0);
    expect(driver.r(C.Q_VECTOR, 2)).toBe(NO_VECTOR);
    expect(driver.r(C.Q_SIZE, 2)).toBe(256);
  });
});

describe("configuration change notifications", () => {
  it("bump config_generation and interrupt: config vector with MSI-X, ISR bit 1 + INTx without", () => {
    const device = new VirtioRng();
    const { driver, sink } = setupTransport(device);
    device.onConfigChange(); // before DRIVER_OK: generation only
    expect(driver.r(C.GENERATION, 1)).toBe(1);
    expect(sink.level).toBe(false);
    driver.init({ configVector: 2 });
    device.onConfigChange();
    expect(driver.r(C.GENERATION, 1)).toBe(2);
    expect(sink.level).toBe(true);
    expect(driver.isr()).toBe(2);
    sink.msixOn = true;
    device.onConfigChange();
    expect(sink.sent).toEqual([2]);
    expect(sink.level).toBe(false);
  });
});

describe("virtio-rng through the modern transport", () => {
  it("fills device-writable buffers with random bytes and raises INTx with a read-to-clear ISR", () => {
    const { driver, mem, sink } = setupTransport(new VirtioRng());
    driver.init();
    const buf = driver.alloc.alloc(64);
    const head = driver.rings[0]!.post([{ addr: buf, len: 64, write: true }]);
    driver.kick(0);
    expect(driver.rings[0]!.takeUsed()).toEqual([{ id: head, len: 64 }]);
    expect(mem.view(buf, 64).some((b) => b !== 0)).toBe(true);
    expect(sink.level).toBe(true);
    expect(driver.isr()).toBe(1);
    expect(sink.level).toBe(false);
    expect(driver.isr()).toBe(0);
  });

  it("sends the queue's MSI-X vector when MSI-X is enabled, and nothing for NO_VECTOR", () => {
    const { driver, sink, transport } = setupTransport(new VirtioRng());
    sink.msixOn = true;
    driver.init({ vectors: [1], configVector: 0 });
    const ring = driver.rings[0]!;
    ring.post([{ addr: driver.alloc.alloc(8), len: 8, write: true }]);
    driver.kick(0);
    expect(sink.sent).toEqual([1]);
    expect(sink.level).toBe(false);
    driver.w(C.Q_SELECT, 2, 0);
    driver.w(C.Q_VECTOR, 2, NO_VECTOR);
    ring.post([{ addr: driver.alloc.alloc(8), len: 8, write: true }]);
    driver.kick(0);
    expect(ring.takeUsed().length).toBe(2);
    expect(sink.sent).toEqual([1]);
    expect(sink.level).toBe(false); // no INTx while MSI-X is enabled
    expect(transport.isr.value).toBe(0);
  });

  it("suppresses interrupts through used_event when EVENT_IDX is negotiated", () => {
    const { driver, sink } = setupTransport(new VirtioRng());
    driver.init();
    const ring = driver.rings[0]!;
    ring.setUsedEvent(5);
    for (let i = 0; i < 3; i++) {
      ring.post([{ addr: driver.alloc.alloc(4), len: 4, write: true }]);
      driver.kick(0);
    }
    expect(ring.usedIdx()).toBe(3);
    expect(sink.raises).toBe(0);
    expect(ring.availEvent()).toBe(3);
    for (let i = 0; i < 3; i++) ring.post([{ addr: driver.alloc.alloc(4), len: 4, write: true }]);
    driver.kick(0);
    expect(sink.raises).toBe(1);
  });

  it("ignores notifications before DRIVER_OK and for unknown queues", () => {
    const { driver, transport } = setupTransport(new VirtioRng());
    driver.kick(0);
    driver.init();
    driver.kick(7);
    transport.notify(1000);
    expect(driver.rings[0]!.usedIdx()).toBe(0);
  });

  it.each([
    ["a descriptor loop", (d: import("./driver.js").DriverRing) => { d.writeDesc(0, 0x20000, 4, 3, 1); d.writeDesc(1, 0x20000, 4, 3, 0); d.publish(0); }],
    ["an avail index jump", (d: import("./driver.js").DriverRing) => d.setAvailIdx(1000)],
    ["nested indirect", (d: import("./driver.js").DriverRing) => { d.writeDesc(0, 0x20000, 16, 4, 0); d.writeDesc(0, 0x20000, 16, 4, 0, 0x20000); d.publish(0); }],
  ])("sets DEVICE_NEEDS_RESET and a config interrupt on %s, then recovers after reset", (_n, corrupt) => {
    const { driver, sink } = setupTransport(new VirtioRng());
    sink.msixOn = true;
    driver.init({ configVector: 3 });
    corrupt(driver.rings[0]!);
    driver.kick(0);
    expect(driver.status() & Status.DEVICE_NEEDS_RESET).toBeTruthy();
    expect(sink.sent).toEqual([3]);
    driver.rings.length = 0;
    expect(driver.init()).toBe(true);
    expect(driver.status() & Status.DEVICE_NEEDS_RESET).toBe(0);
    const ring = driver.rings[0]!;
    ring.post([{ addr: driver.alloc.alloc(4), len: 4, write: true }]);
    driver.kick(0);
    expect(ring.takeUsed().length).toBe(1);
  });

  it("refuses rings outside guest RAM at DRIVER_OK with DEVICE_NEEDS_RESET", () => {
    const { driver } = setupTransport(new VirtioRng());
    driver.w(C.STATUS, 1, 3);
    driver.writeFeatures(driver.deviceFeatures());
    driver.w(C.STATUS, 1, 0xb);
    driver.w(C.Q_DESC, 4, 0);
    driver.w(C.Q_DESC + 4, 4, 0x10); // far outside RAM
    driver.w(C.Q_ENABLE, 2, 1);
    driver.w(C.STATUS, 1, 0xf);
    expect(driver.status() & Status.DEVICE_NEEDS_RESET).toBeTruthy();
  });

  it("survives buffers outside guest RAM in a well-formed chain", () => {
    const { driver, logger } = setupTransport(new VirtioRng());
    driver.init();
    const ring = driver.rings[0]!;
    ring.post([{ addr: 0x7000_0000, len: 64, write: true }]);
    driver.kick(0);
    expect(ring.takeUsed()).toEqual([{ id: 0, len: 0 }]);
    expect(logger.lines.join()).toMatch(/outside RAM/);
  });
});
