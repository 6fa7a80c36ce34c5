// Passthrough interrupts: the device's eventfds go to the platform's (irqfd) while a vector is deliverable and to
// the model's pending eventfds while it is masked; INTx through irqfd with resample (unmask by message or by
// eventfd), INTx-disable, INTx without irqfd, and the switches between INTx, MSI and MSI-X.
import { afterEach, describe, expect, it } from "vitest";
import type { PciAddress, PciBarWindow } from "@vmm/core";
import { VfioIrq } from "../src/backend/backend.js";
import type { VfioPciFunction } from "../src/device/index.js";
import { makeRig, nicDevice, passthrough, settle, signalEventFd, until, type FakeVfioDevice, type Rig } from "./device-fake.js";

let rig: Rig;
afterEach(() => rig?.cleanup());

const MSI = 0x50;
const MSIX = 0xb0;
const windowOf = (windows: PciBarWindow[], index: number) => windows.find((w) => w.index === index)!;

function setup(options: { irqfd?: boolean; intxUnmask?: "eventfd" | "message" } = {}) {
  rig = makeRig({ irqfd: options.irqfd ?? true });
  const dev = nicDevice();
  const fn = passthrough(rig, dev, options.intxUnmask ? { intxUnmask: options.intxUnmask } : {});
  const at = rig.bus.attach(fn);
  return { dev, fn, at };
}

/** Signals the resample eventfd as KVM does after the guest's EOI. */
const resample = (fd: number): void => signalEventFd(fd);

/** Bus master on, MSI-X enabled, entry `v` programmed and unmasked. */
function enableMsix(fn: VfioPciFunction, at: PciAddress, vectors: number[]): number {
  const bar4 = windowOf(rig.bus.windows(fn), 4).address;
  rig.bus.configWrite(at, 0x04, 2, 0x0007);
  rig.bus.configWrite(at, MSIX + 2, 2, 0x8000);
  for (const v of vectors) {
    rig.mmio.write(bar4 + 16 * v, 4, 0xfee0_0000);
    rig.mmio.write(bar4 + 16 * v + 8, 4, 0x40 + v);
    rig.mmio.write(bar4 + 16 * v + 12, 4, 0);
  }
  return bar4;
}

const deviceFds = (dev: FakeVfioDevice, index: number) => dev.triggers.get(index) ?? [];

describe("INTx through irqfd", () => {
  it("the device's trigger eventfd is the line's irqfd; an EOI unmasks the device with a message", async () => {
    const { dev, fn } = setup();
    expect(fn.interruptMode).toBe("intx");
    const route = rig.lines.live()!;
    expect(deviceFds(dev, VfioIrq.INTX)).toEqual([route.trigger]);
    expect(dev.signal(VfioIrq.INTX)).toBe(true);
    resample(route.resample);
    await until(() => fn.stats.intxUnmasks === 1);
    expect(dev.irqLog.at(-1)).toEqual({ action: "unmask", index: VfioIrq.INTX, start: 0, count: 1 });
    expect(fn.stats.userspaceInterrupts).toBe(0);
  });

  it("with eventfd unmask the backend takes the resample fd and nothing passes through this process", async () => {
    const { dev, fn } = setup({ intxUnmask: "eventfd" });
    const route = rig.lines.live()!;
    expect(dev.unmaskFd).toBe(route.resample);
    resample(route.resample);
    await settle();
    expect(fn.stats.intxUnmasks).toBe(0);
    expect(dev.irqLog.some((r) => r.action === "unmask")).toBe(false);
  });

  it("falls back to unmask messages when the backend refuses the unmask eventfd", async () => {
    rig = makeRig();
    const dev = nicDevice();
    dev.refuse = "unmask-fd";
    const fn = passthrough(rig, dev, { intxUnmask: "eventfd" });
    rig.bus.attach(fn);
    resample(rig.lines.live()!.resample);
    await until(() => fn.stats.intxUnmasks === 1);
  });

  it("follows command.INTx-disable: the irqfd leaves the line, and the device is unmasked when it comes back", () => {
    const { dev, at } = setup();
    expect(rig.lines.live()).toBeDefined();
    rig.bus.configWrite(at, 0x04, 2, 0x0403);
    expect(rig.lines.live()).toBeUndefined();
    expect(dev.configWrites.at(-1)).toBe("4/2=403"); // the device stops asserting too
    rig.bus.configWrite(at, 0x04, 2, 0x0003);
    expect(rig.lines.live()).toBeDefined();
    expect(dev.irqLog.at(-1)).toEqual({ action: "unmask", index: VfioIrq.INTX, start: 0, count: 1 });
  });
});

describe("INTx without irqfd", () => {
  it("asserts the line from this process, traps the BARs until the guest touches the device, then deasserts and unmasks", async () => {
    const { dev, fn } = setup({ irqfd: false });
    const gsi = rig.bus.intxRoutes().find((r) => r.address.device === 1)!.gsi;
    const mapped = rig.mapper.spans();
    expect(mapped.length).toBe(2);
    dev.signal(VfioIrq.INTX);
    await until(() => rig.lines.levels.get(gsi) === true);
    expect(fn.stats.userspaceInterrupts).toBe(1);
    expect(rig.mapper.slots).toEqual([]); // every BAR access traps now
    const bar2 = windowOf(rig.bus.windows(fn), 2).address;
    rig.mmio.read(bar2 + 0x3e, 2); // the driver reads its interrupt status
    expect(rig.lines.levels.get(gsi)).toBe(false);
    expect(dev.irqLog.at(-1)).toEqual({ action: "unmask", index: VfioIrq.INTX, start: 0, count: 1 });
    expect(rig.mapper.spans()).toEqual(mapped);
  });
});

describe("MSI-X", () => {
  it("a deliverable vector's eventfd goes to the device: its interrupts need no userspace hop", async () => {
    const { dev, fn, at } = setup();
    enableMsix(fn, at, [0]);
    expect(fn.interruptMode).toBe("msix");
    const fds = deviceFds(dev, VfioIrq.MSIX);
    expect(fds.length).toBe(4);
    expect(fds[0]).toBe(rig.vectors.vector("MSI-X", 0).eventFd.fd);
    expect(fds.slice(1)).not.toContain(rig.vectors.vector("MSI-X", 1).eventFd.fd); // masked: the model's fds
    dev.signal(VfioIrq.MSIX, 0);
    dev.signal(VfioIrq.MSIX, 0);
    expect(rig.vectors.fast("MSI-X", 0)).toBe(2);
    await settle();
    expect(fn.stats.userspaceInterrupts).toBe(0);
  });

  it("masking switches the device to a pending eventfd that sets the PBA bit; unmasking delivers it", async () => {
    const { dev, fn, at } = setup();
    const bar4 = enableMsix(fn, at, [0, 1]);
    const vector1 = rig.vectors.vector("MSI-X", 1);
    rig.mmio.write(bar4 + 16 + 12, 4, 1); // mask vector 1
    const last = dev.irqLog.at(-1)!;
    expect(last).toMatchObject({ action: "trigger", index: VfioIrq.MSIX, start: 1 }); // only vector 1 changes
    expect(deviceFds(dev, VfioIrq.MSIX)[1]).not.toBe(vector1.eventFd.fd);
    dev.signal(VfioIrq.MSIX, 1);
    await until(() => (rig.mmio.read(bar4 + 0x800, 4) & 2) !== 0);
    expect(fn.stats.userspaceInterrupts).toBe(1);
    expect(rig.vectors.fast("MSI-X", 1)).toBe(0);
    rig.mmio.write(bar4 + 16 + 12, 4, 0); // unmask
    expect(vector1.slow).toBe(1); // the pending message, sent on unmask
    expect(rig.mmio.read(bar4 + 0x800, 4) & 2).toBe(0);
    expect(deviceFds(dev, VfioIrq.MSIX)[1]).toBe(vector1.eventFd.fd);
  });

  it("the function mask and Bus Master Enable take every vector off the platform's eventfds", () => {
    const { dev, fn, at } = setup();
    enableMsix(fn, at, [0, 1, 2, 3]);
    const fast = [0, 1, 2, 3].map((v) => rig.vectors.vector("MSI-X", v).eventFd.fd);
    expect(deviceFds(dev, VfioIrq.MSIX)).toEqual(fast);
    rig.bus.configWrite(at, MSIX + 2, 2, 0xc000);
    expect(deviceFds(dev, VfioIrq.MSIX).some((fd) => fast.includes(fd))).toBe(false);
    rig.bus.configWrite(at, MSIX + 2, 2, 0x8000);
    expect(deviceFds(dev, VfioIrq.MSIX)).toEqual(fast);
    rig.bus.configWrite(at, 0x04, 2, 0x0003); // bus master off
    expect(deviceFds(dev, VfioIrq.MSIX).some((fd) => fast.includes(fd))).toBe(false);
  });

  it("turning MSI-X on takes INTx off the device first, and turning it off brings INTx back", () => {
    const { dev, fn, at } = setup();
    const before = dev.irqLog.length;
    enableMsix(fn, at, []);
    const steps = dev.irqLog.slice(before).map((r) => `${r.action} ${r.index}`);
    expect(steps.slice(0, 2)).toEqual([`trigger-disable ${VfioIrq.INTX}`, `trigger ${VfioIrq.MSIX}`]);
    expect(rig.lines.live()).toBeUndefined();
    rig.bus.configWrite(at, MSIX + 2, 2, 0);
    expect(fn.interruptMode).toBe("intx");
    expect(dev.irqLog.slice(-2).map((r) => `${r.action} ${r.index}`)).toEqual([`trigger-disable ${VfioIrq.MSIX}`, `trigger ${VfioIrq.INTX}`]);
    expect(deviceFds(dev, VfioIrq.INTX)).toEqual([rig.lines.live()!.trigger]);
  });
});

describe("MSI", () => {
  /** Bus master on, MSI enabled with `mme` (log2 of vectors), message programmed. */
  function enableMsi(at: PciAddress, mme: number): void {
    rig.bus.configWrite(at, 0x04, 2, 0x0407); // INTx disabled, as Linux does for MSI
    rig.bus.configWrite(at, MSI + 4, 4, 0xfee0_0000);
    rig.bus.configWrite(at, MSI + 8, 4, 0);
    rig.bus.configWrite(at, MSI + 0xc, 2, 0x60);
    rig.bus.configWrite(at, MSI + 2, 2, 0x0001 | (mme << 4));
  }

  it("enabling gives the device one eventfd per allocated vector, after INTx is off", () => {
    const { dev, fn, at } = setup();
    enableMsi(at, 1);
    expect(fn.interruptMode).toBe("msi");
    const fast = [0, 1].map((v) => rig.vectors.vector(" MSI", v).eventFd.fd);
    expect(deviceFds(dev, VfioIrq.MSI)).toEqual(fast);
    const log = dev.irqLog.map((r) => `${r.action} ${r.index}`);
    expect(log.lastIndexOf(`trigger-disable ${VfioIrq.INTX}`)).toBeLessThan(log.lastIndexOf(`trigger ${VfioIrq.MSI}`));
    dev.signal(VfioIrq.MSI, 1);
    expect(rig.vectors.fast(" MSI", 1)).toBe(1);
  });

  it("a masked vector's interrupt waits in the pending register", async () => {
    const { dev, fn, at } = setup();
    enableMsi(at, 1);
    rig.bus.configWrite(at, MSI + 0x10, 4, 0x2); // mask vector 1
    expect(deviceFds(dev, VfioIrq.MSI)[1]).not.toBe(rig.vectors.vector(" MSI", 1).eventFd.fd);
    dev.signal(VfioIrq.MSI, 1);
    await until(() => (rig.bus.configRead(at, MSI + 0x14, 4) & 2) !== 0);
    expect(fn.stats.userspaceInterrupts).toBe(1);
    rig.bus.configWrite(at, MSI + 0x10, 4, 0);
    expect(rig.vectors.vector(" MSI", 1).slow).toBe(1);
    expect(rig.bus.configRead(at, MSI + 0x14, 4)).toBe(0);
  });

  it("changing the number of vectors re-enables MSI with the new count", () => {
    const { dev, at } = setup();
    enableMsi(at, 1);
    rig.bus.configWrite(at, MSI + 2, 2, 0x0001 | (2 << 4));
    expect(deviceFds(dev, VfioIrq.MSI).length).toBe(4);
    expect(dev.irqLog.slice(-2).map((r) => r.action)).toEqual(["trigger-disable", "trigger"]);
  });

  it("switching from MSI back to INTx works: the Juno thread's failing case", async () => {
    const { dev, fn, at } = setup();
    enableMsi(at, 0);
    rig.bus.configWrite(at, MSI + 2, 2, 0x0000); // MSI off
    rig.bus.configWrite(at, 0x04, 2, 0x0007); // INTx back on
    expect(fn.interruptMode).toBe("intx");
    const route = rig.lines.live()!;
    expect(deviceFds(dev, VfioIrq.INTX)).toEqual([route.trigger]);
    expect(dev.triggers.has(VfioIrq.MSI)).toBe(false);
    resample(route.resample);
    await until(() => fn.stats.intxUnmasks >= 1);
  });
});

describe("resets", () => {
  it("a machine reset turns MSI-X off on the device, resets it and sets INTx up again", () => {
    const { dev, fn, at } = setup();
    enableMsix(fn, at, [0]);
    const resets = dev.resets;
    rig.bus.reset();
    expect(dev.resets).toBe(resets + 1);
    expect(fn.interruptMode).toBe("intx");
    expect(dev.triggers.has(VfioIrq.MSIX)).toBe(false);
    expect(deviceFds(dev, VfioIrq.INTX)).toEqual([rig.lines.live()!.trigger]);
    const order = dev.calls.slice(dev.calls.lastIndexOf(`irq trigger-disable ${VfioIrq.MSIX}`));
    expect(order.indexOf("reset")).toBeLessThan(order.indexOf(`irq trigger ${VfioIrq.INTX}`));
  });
});
