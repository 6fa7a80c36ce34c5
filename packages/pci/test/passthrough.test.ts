// What a passthrough device model (VFIO) needs from the framework: config bits backed by a physical device,
// capabilities at the device's own offsets, the device's PCI Express capability adopted, INTx driven by eventfds,
// and the eventfd of each deliverable MSI / MSI-X vector.
import { describe, expect, it } from "vitest";
import { ConfigurationError, type InterruptLine, type MsiVectorFactory, type PciCapability, type SmallAccessSize } from "@vmm/core";
import { ConfigSpace, EXPRESS_CAPABILITY_ID, MsiCapability, MsixCapability, PcieRootPort } from "../src/index.js";
import { makeRig, STANDARD_BARS, TestFunction } from "./helpers.js";

/** A device's config bytes with a log of the accesses that reached it. */
function fakeDevice(size = 256) {
  const bytes = new Uint8Array(size);
  const log: string[] = [];
  return {
    bytes,
    log,
    read(offset: number, s: SmallAccessSize) {
      log.push(`r${offset.toString(16)}/${s}`);
      let v = 0;
      for (let i = s - 1; i >= 0; i--) v = v * 256 + bytes[offset + i]!;
      return v;
    },
    write(offset: number, s: SmallAccessSize, value: number) {
      log.push(`w${offset.toString(16)}/${s}=${value.toString(16)}`);
      for (let i = 0; i < s; i++) bytes[offset + i] = (value >>> (8 * i)) & 0xff;
    },
  };
}

describe("ConfigSpace backed by a physical device", () => {
  it("serves everything emulated until bits are handed to the device", () => {
    const space = new ConfigSpace(256);
    const dev = fakeDevice();
    dev.bytes[0x40] = 0x5a;
    space.backWith(dev);
    expect(space.read(0x40, 1)).toBe(0);
    space.write(0x40, 1, 0xff);
    expect(dev.log).toEqual([]);
    space.setPhysical(0x40, 4);
    expect(space.read(0x40, 1)).toBe(0x5a);
    expect(dev.log).toEqual(["r40/1"]);
  });

  it("merges reads bit by bit and writes the device's bits with the emulated ones' values", () => {
    const space = new ConfigSpace(256);
    const dev = fakeDevice();
    space.backWith(dev);
    // 0x06: bit 4 emulated (set), the rest the device's.
    space.file.set(0x06, 2, 0x0010);
    space.setPhysical(0x06, 1, 0xef);
    space.setPhysical(0x07, 1, 0xff);
    dev.bytes[0x06] = 0x08;
    dev.bytes[0x07] = 0x02;
    expect(space.read(0x06, 2)).toBe(0x0218);
    dev.bytes[0x06] = 0xff;
    expect(space.read(0x06, 2)).toBe(0x02ff); // bit 4 stays the emulated 1
    space.write(0x06, 2, 0xf900);
    expect(dev.log.at(-1)).toBe("w6/2=f910"); // the guest's bits, the emulated bit's own value
  });

  it("does not send writes of wholly emulated bytes, unless they are forwarded", () => {
    const space = new ConfigSpace(256);
    const dev = fakeDevice();
    space.backWith(dev);
    space.file.mask(0x04, 2, 0x0407);
    space.write(0x04, 2, 0x0003);
    expect(dev.log).toEqual([]);
    space.setForwarded(0x04, 2);
    space.write(0x04, 2, 0xffff);
    expect(space.read(0x04, 2)).toBe(0x0407); // reads stay emulated
    expect(dev.log).toEqual(["w4/2=407"]); // the emulated value after the masked write
  });

  it("runs a capability's onWrite before the device write, so the hook can settle the emulated bits", () => {
    const space = new ConfigSpace(256);
    const dev = fakeDevice();
    space.backWith(dev);
    const body = new Uint8Array(2);
    space.place(0x48, {
      body,
      writable: new Uint8Array([0x00, 0x80]),
      onWrite: () => {
        body[1] = 0; // a self-clearing bit (e.g. Initiate FLR)
      },
    });
    space.setPhysical(0x48, 1);
    space.setPhysical(0x49, 1, 0x7f);
    space.write(0x48, 2, 0x8012);
    expect(dev.log).toEqual(["w48/2=12"]);
  });

  it("refuses masks without a device and ranges outside the space", () => {
    const space = new ConfigSpace(256);
    expect(() => space.setPhysical(0x40, 4)).toThrow(RangeError);
    space.backWith(fakeDevice());
    expect(() => space.setPhysical(0xfe, 4)).toThrow(/outside/);
    expect(space.masksAt(0x40)).toEqual({ writable: 0, writeOneToClear: 0, physical: 0, forwarded: false });
    space.setPhysical(0x40, 1, 0x0f);
    space.setForwarded(0x40, 1);
    expect(space.masksAt(0x40)).toMatchObject({ physical: 0x0f, forwarded: true });
  });
});

const cap = (id: number, length: number): PciCapability => ({ id, body: new Uint8Array(length) });

describe("capabilities at fixed offsets", () => {
  it("places them where asked, chained in the order added", () => {
    const fn = new TestFunction();
    expect(fn.addCapability(cap(0x01, 6), 0x60)).toBe(0x60);
    expect(fn.addCapability(cap(0x09, 2), 0x40)).toBe(0x40);
    expect(fn.configRead(0x34, 1)).toBe(0x60);
    expect(fn.configRead(0x60, 2)).toBe(0x4001);
    expect(fn.configRead(0x40, 2)).toBe(0x0009);
  });

  it("puts capabilities without an offset into the first gap that fits", () => {
    const fn = new TestFunction();
    fn.addCapability(cap(0x01, 6), 0x48); // 0x48-0x4f
    expect(fn.addCapability(cap(0x09, 2))).toBe(0x40); // 4 bytes fit before it
    expect(fn.addCapability(cap(0x09, 6))).toBe(0x50); // 8 bytes do not fit at 0x44
    expect(fn.addCapability(cap(0x09, 2))).toBe(0x44);
  });

  it("refuses misaligned, out-of-range and overlapping offsets", () => {
    const fn = new TestFunction();
    fn.addCapability(cap(0x01, 6), 0x40);
    expect(() => fn.addCapability(cap(0x09, 2), 0x42)).toThrow(/dword-aligned/);
    expect(() => fn.addCapability(cap(0x09, 2), 0x3c)).toThrow(ConfigurationError);
    expect(() => fn.addCapability(cap(0x09, 6), 0xfc)).toThrow(/0x40-0xff/);
    expect(() => fn.addCapability(cap(0x09, 2), 0x44)).toThrow(/overlaps the capability at 0x40/);
  });

  it("keeps MSI and MSI-X wired when they are placed at fixed offsets", () => {
    const fn = new TestFunction({ bars: STANDARD_BARS });
    const msix = new MsixCapability({ vectors: 2, tableBar: 1 });
    expect(fn.addCapability(msix, 0x70)).toBe(0x70);
    expect(fn.msix).toBe(msix);
    expect(fn.addCapability(new MsiCapability(), 0x50)).toBe(0x50);
    expect(fn.msi).toBeDefined();
  });

  it("places extended capabilities at fixed offsets; the first must sit at 0x100", () => {
    const fn = new TestFunction({ express: { type: "endpoint" } });
    const ext = (id: number) => ({ id, version: 1, body: new Uint8Array(8) });
    expect(() => fn.addExtendedCapability(ext(0x0001), 0x140)).toThrow(/must sit at 0x100/);
    expect(fn.addExtendedCapability(ext(0x0001), 0x100)).toBe(0x100);
    expect(fn.addExtendedCapability(ext(0x0003), 0x180)).toBe(0x180);
    expect(fn.addExtendedCapability(ext(0x0004))).toBe(0x10c);
    expect(fn.configRead(0x100, 4) >>> 20).toBe(0x180);
    expect(fn.configRead(0x180, 4) >>> 20).toBe(0x10c);
    expect(fn.configRead(0x10c, 4) >>> 20).toBe(0);
  });
});

describe("adopting a device's own PCI Express capability", () => {
  /** A device's version 2 endpoint capability body (0x3c bytes with the header). */
  const deviceExpress = (): PciCapability => {
    const body = new Uint8Array(0x3a);
    body[0] = 0x02; // version 2, endpoint
    return { id: EXPRESS_CAPABILITY_ID, body };
  };

  const expressOffsets = (fn: TestFunction) => {
    const out: number[] = [];
    for (let at = fn.configRead(0x34, 1); at; at = fn.configRead(at + 1, 1)) if (fn.configRead(at, 1) === EXPRESS_CAPABILITY_ID) out.push(at);
    return out;
  };

  it("rewrites the adopted capability's type at placement instead of adding a second one", () => {
    const fn = new TestFunction();
    fn.addCapability(deviceExpress(), 0x80);
    expect(fn.express).toBe(false); // adopting does not make the function PCI Express
    fn.placeExpress("rc-integrated");
    expect(fn.express).toBe(true);
    expect(expressOffsets(fn)).toEqual([0x80]);
    expect(fn.configRead(0x82, 2)).toBe(0x0092); // version 2 kept, type 9
  });

  it("is what the bus places below a root port", () => {
    const rig = makeRig();
    const rp = new PcieRootPort({ name: "rp" });
    rig.bus.attach(rp, { device: 1 });
    const fn = new TestFunction();
    fn.addCapability(deviceExpress(), 0x60);
    rig.bus.attach(fn, { behind: rp, express: "endpoint" });
    expect(expressOffsets(fn)).toEqual([0x60]);
    expect((fn.configRead(0x62, 2) >> 4) & 0xf).toBe(0);
  });
});

/** A bus line that offers irqfd and records registrations by GSI. */
function irqfdRig() {
  const events: string[] = [];
  const rig = makeRig({
    irq: (gsi): InterruptLine => ({
      level: false,
      set: () => {},
      irqfd: (trigger, resample) => {
        events.push(`+${gsi}:${trigger}/${resample}`);
        return { remove: () => events.push(`-${gsi}:${trigger}`) };
      },
    }),
  });
  return { rig, events };
}

describe("INTx from eventfds", () => {
  it("is not offered before attach or where the bus line has no irqfd", () => {
    const fn = new TestFunction({ interruptPin: 1 });
    expect(fn.intx.irqfd).toBeUndefined();
    makeRig().bus.attach(fn);
    expect(fn.intx.irqfd).toBeUndefined();
  });

  it("registers the pair on the function's routed GSI, also behind a bridge's swizzle", () => {
    const { rig, events } = irqfdRig();
    const a = new TestFunction({ interruptPin: 2 });
    rig.bus.attach(a, { device: 3 }); // (3 + 2 - 1) % 4 -> GSI 5
    const h = a.intx.irqfd!(20, 21);
    expect(events).toEqual(["+5:20/21"]);
    h.remove();
    h.remove();
    expect(events).toEqual(["+5:20/21", "-5:20"]);

    const rp = new PcieRootPort({ name: "rp" });
    rig.bus.attach(rp, { device: 1 });
    const b = new TestFunction({ interruptPin: 1 });
    rig.bus.attach(b, { behind: rp, express: "endpoint" }); // INTA of 0 -> rp's INTA -> (1 + 1 - 1) % 4 -> GSI 9
    b.intx.irqfd!(30, 31);
    expect(events.at(-1)).toBe("+9:30/31");
  });

  it("follows command.INTx-disable: removed while set, registered again when cleared", () => {
    const { rig, events } = irqfdRig();
    const fn = new TestFunction({ interruptPin: 1 });
    const address = rig.bus.attach(fn);
    fn.intx.irqfd!(40, 41);
    rig.bus.configWrite(address, 0x04, 2, 0x0400 | fn.configRead(0x04, 2));
    rig.bus.configWrite(address, 0x04, 2, 0x0400 | fn.configRead(0x04, 2)); // no change: nothing happens
    rig.bus.configWrite(address, 0x04, 2, fn.configRead(0x04, 2) & ~0x0400);
    expect(events.map((e) => e.split(":")[0])).toEqual(["+9", "-9", "+9"]); // device 1, INTA -> GSI 9
    // Registered while disabled: only once enabled.
    rig.bus.configWrite(address, 0x04, 2, 0x0400 | fn.configRead(0x04, 2));
    const h = fn.intx.irqfd!(50, 51);
    expect(events.filter((e) => e.includes(":50"))).toEqual([]);
    h.remove();
    rig.bus.configWrite(address, 0x04, 2, fn.configRead(0x04, 2) & ~0x0400);
    expect(events.filter((e) => e.includes(":50"))).toEqual([]);
  });
});

/** Vectors whose eventFd is a distinct number while programmed with a message. */
function eventFdVectors(): MsiVectorFactory {
  let next = 100;
  return {
    create: (_owner, count) => {
      const programmed = new Array<boolean>(count).fill(false);
      const fds = Array.from({ length: count }, () => next++);
      return {
        count,
        vector: (i) => ({
          program: (m) => {
            programmed[i] = m !== undefined;
          },
          trigger: () => {},
          get eventFd() {
            return fds[i];
          },
        }),
        batch: (f) => f(),
        close: () => {},
      };
    },
  };
}

describe("vector eventfds", () => {
  it("MSI-X: present only while the vector is deliverable", () => {
    const rig = makeRig({ msiVectors: eventFdVectors() });
    const fn = new TestFunction({ bars: STANDARD_BARS });
    const msix = new MsixCapability({ vectors: 2, tableBar: 1 });
    const at = fn.addCapability(msix);
    const address = rig.bus.attach(fn);
    expect(msix.vectorEventFd(0)).toBeUndefined(); // disabled
    rig.bus.configWrite(address, 0x04, 2, 0x0006); // memory + bus master
    rig.bus.configWrite(address, at + 2, 2, 0x8000); // enable
    expect(msix.vectorEventFd(0)).toBeUndefined(); // masked
    msix.tableHandler.write(12, 4, 0);
    expect(msix.deliverable(0)).toBe(true);
    expect(msix.vectorEventFd(0)).toBe(100);
    expect(msix.vectorEventFd(1)).toBeUndefined();
    rig.bus.configWrite(address, at + 2, 2, 0xc000); // function mask
    expect(msix.vectorEventFd(0)).toBeUndefined();
    rig.bus.configWrite(address, at + 2, 2, 0x8000);
    rig.bus.configWrite(address, 0x04, 2, 0x0002); // bus master off
    expect(msix.vectorEventFd(0)).toBeUndefined();
    expect(msix.vectorEventFd(7)).toBeUndefined();
  });

  it("MSI: present for allocated, unmasked vectors while enabled with bus mastering", () => {
    const rig = makeRig({ msiVectors: eventFdVectors() });
    const fn = new TestFunction();
    const msi = new MsiCapability({ vectors: 4, perVectorMask: true });
    const at = fn.addCapability(msi);
    const address = rig.bus.attach(fn);
    rig.bus.configWrite(address, 0x04, 2, 0x0004);
    expect(msi.vectorEventFd(0)).toBeUndefined();
    rig.bus.configWrite(address, at + 2, 2, 0x0011); // enable, 2 vectors
    expect([0, 1, 2].map((v) => msi.vectorEventFd(v))).toEqual([100, 101, undefined]);
    rig.bus.configWrite(address, at + 0x10, 4, 0x2); // mask vector 1
    expect([0, 1].map((v) => msi.vectorEventFd(v))).toEqual([100, undefined]);
  });
});
