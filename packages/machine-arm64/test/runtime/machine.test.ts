// The arm64 run-time machine over kvm-native's real Arm64Vm/Arm64Vcpu/Vgic and a recording addon (fake-kvm.ts):
// the set-up's native calls in order, what lands in guest RAM, MMIO reaching the UART, ECAM, the PCI I/O window
// and the GICv2m frame, INTx and MSIs reaching their SPI/GSI/device id, and PSCI events ending the run.
import { PassThrough, Writable } from "node:stream";
import { MemoryLogger, type SmallAccessSize } from "@vmm/core";
import { VirtioPciFunction, VirtioRng, VIRTIO_VENDOR_ID } from "@vmm/device-virtio";
import { decodeCells, findNode, getProperty, readDtb, type FdtNode } from "@vmm/fdt";
import { arm64CoreRegId, arm64FeatureWords, arm64IrqLine, Arm64MpState, Arm64VcpuFeature, KvmDeviceType, SystemEvent, VgicAddr, VgicCtrl, VgicGroup } from "@vmm/kvm-native";
import { ECAM_BUS_SIZE, MsiCapability, PciFunction } from "@vmm/pci";
import { describe, expect, it } from "vitest";
import { Arm64KvmMachine, GIC_SPI_BASE, pciIntxSpi, requesterId, V2mRegister, type Arm64KvmMachineOptions } from "../../src/index.js";
import { arm64Image, fakeKvm, TARGET, VM_FD, type RunStep } from "./fake-kvm.js";

const MIB = 2 ** 20;

function machineWith(options: Partial<Arm64KvmMachineOptions> = {}, fake = fakeKvm()) {
  const out: number[] = [];
  const logger = new MemoryLogger();
  const m = new Arm64KvmMachine({
    ramSize: 64 * MIB,
    cpus: 2,
    kernel: arm64Image(),
    cmdline: "console=ttyS0",
    serial: { output: (b) => void out.push(...b) },
    logger,
    kvm: fake.kvm,
    ...options,
  });
  return { m, fake, out, logger };
}

/** A node's `reg` as [address, size] pairs of two cells each. */
function regs(node: FdtNode): Array<[number, number]> {
  const c = decodeCells(getProperty(node, "reg")!.value);
  const out: Array<[number, number]> = [];
  for (let i = 0; i < c.length; i += 4) out.push([c[i]! * 2 ** 32 + c[i + 1]!, c[i + 2]! * 2 ** 32 + c[i + 3]!]);
  return out;
}

const gicNode = (dtb: Uint8Array) => readDtb(dtb).root.children.find((c) => c.name.startsWith("interrupt-controller@"))!;
const spiLine = (spi: number) => arm64IrqLine({ type: "spi", intid: GIC_SPI_BASE + spi });
const ecamAddress = (base: number, bus: number, device: number, fn: number, offset: number) => base + bus * ECAM_BUS_SIZE + ((device << 15) | (fn << 12)) + offset;

describe("Arm64KvmMachine set-up, over kvm-native's arm64 classes and a recording addon", () => {
  it("creates the VM, backs RAM at the map's base, inits vCPUs (secondaries off), places the GICv3 + ITS at the DTB's addresses and inits it after the vCPUs", () => {
    const { m, fake } = machineWith({ cpus: 3 });
    const map = m.description.memoryMap;
    const { calls, named, indexOf } = fake;
    expect(calls[0]).toEqual(["createArm64Vm", {}]);
    expect(named("allocateSharedMemory")).toEqual([["allocateSharedMemory", 64 * MIB]]);
    expect(named("setUserMemoryRegion")).toEqual([["setUserMemoryRegion", VM_FD, 0, 0, map.ram.base, 64 * MIB]]);
    expect(map.ram.base).toBe(0x8000_0000);

    const psci = arm64FeatureWords([Arm64VcpuFeature.PSCI_0_2]);
    const off = arm64FeatureWords([Arm64VcpuFeature.PSCI_0_2, Arm64VcpuFeature.POWER_OFF]);
    expect(named("vcpu.init")).toEqual([
      ["vcpu.init", 0, TARGET, psci],
      ["vcpu.init", 1, TARGET, off],
      ["vcpu.init", 2, TARGET, off],
    ]);

    const gic = gicNode(m.description.dtb);
    const [[dist], [redist, redistSize]] = regs(gic) as [[number, number], [number, number]];
    const its = regs(gic.children.find((c) => c.name.startsWith("msi-controller@"))!)[0]![0];
    expect(redistSize).toBe(3 * 0x20000);
    const attrs = named("setDeviceAttr").map(([, , group, attr, value]) => [group, attr, value]);
    expect(attrs).toEqual([
      [VgicGroup.ADDR, VgicAddr.V3_DIST, dist],
      [VgicGroup.ADDR, VgicAddr.V3_REDIST, redist],
      [VgicGroup.NR_IRQS, 0, 128],
      [VgicGroup.ADDR, VgicAddr.ITS, its],
      [VgicGroup.CTRL, VgicCtrl.INIT, undefined],
      [VgicGroup.CTRL, VgicCtrl.INIT, undefined],
    ]);
    expect(indexOf("createDevice", VM_FD, KvmDeviceType.ARM_VGIC_V3, true)).toBeGreaterThan(calls.findLastIndex(([n]) => n === "vcpu.init"));
    const init = calls.findIndex(([n, , group, attr]) => n === "setDeviceAttr" && group === VgicGroup.CTRL && attr === VgicCtrl.INIT);
    expect(init).toBeGreaterThan(indexOf("createVcpuFd", VM_FD, 2));
    m.close();
  });

  it("asks for the memory map's IPA size when it is not KVM's default, and refuses more vCPUs than KVM gives", () => {
    const { m, fake } = machineWith({ ipaBits: 44 });
    expect(fake.calls[0]).toEqual(["createArm64Vm", { ipaBits: 44 }]);
    m.close();
    const few = fakeKvm({ nrVcpus: 2 });
    expect(() => machineWith({ cpus: 3 }, few)).toThrow("3 vCPUs asked for, but this host's KVM allows at most 2");
    expect(few.named("createArm64Vm")).toEqual([]);
    expect(() => machineWith({ kernel: undefined })).toThrow("an arm64 guest needs a kernel");
  });

  it("copies the kernel, initrd and DTB to the planned addresses and sets the boot vCPU's pc and x0 only", () => {
    const kernel = arm64Image();
    const initrd = Uint8Array.from({ length: 3000 }, (_, i) => (i * 13) & 0xff);
    const { m, fake } = machineWith({ kernel, initrd });
    const plan = m.load();
    expect(m.memory.view(plan.kernel.gpa, kernel.length)).toEqual(kernel);
    expect(m.memory.view(plan.initrd!.base, initrd.length)).toEqual(initrd);
    expect(m.memory.view(plan.dtb.base, m.description.dtb.length)).toEqual(m.description.dtb);
    expect(plan.kernel.gpa).toBe(0x8000_0000);
    expect(fake.named("vcpu.setOneReg")).toEqual([
      ["vcpu.setOneReg", 0, arm64CoreRegId("pc"), BigInt(plan.entry.pc)],
      ["vcpu.setOneReg", 0, arm64CoreRegId("x0"), BigInt(plan.dtb.base)],
    ]);
    m.close();
  });

  it("GICv2: places distributor and CPU interface at the DTB's addresses; refuses GICv3 where the host has none", () => {
    const { m, fake } = machineWith({ gic: "v2" });
    const [[dist], [cpu]] = regs(gicNode(m.description.dtb)) as [[number, number], [number, number]];
    expect(fake.named("createDevice").map(([, , type, test]) => [type, test])).toEqual([[KvmDeviceType.ARM_VGIC_V2, false]]);
    expect(fake.named("setDeviceAttr").map(([, , group, attr, value]) => [group, attr, value])).toEqual([
      [VgicGroup.ADDR, VgicAddr.V2_DIST, dist],
      [VgicGroup.ADDR, VgicAddr.V2_CPU, cpu],
      [VgicGroup.NR_IRQS, 0, 128],
      [VgicGroup.CTRL, VgicCtrl.INIT, undefined],
    ]);
    m.close();
    const noV3 = fakeKvm({ gicV3: false });
    expect(() => machineWith({}, noV3)).toThrow("this host's KVM has no GICv3 to give guests; use --irqchip gicv2");
    expect(noV3.named("closeFd").map(([, fd]) => fd)).toContain(VM_FD);
  });
});

describe("Arm64KvmMachine MMIO and interrupts", () => {
  it("UART: a guest byte written at the map's UART reaches the output; received input raises SPI 0 as a level", async () => {
    const { m, fake, out } = machineWith({ cpus: 1 });
    const uart = m.description.memoryMap.uart.base;
    const w = (d: Parameters<RunStep>[0], off: number, v: number) => d.mmio(uart + off, 1, true, v, 0);
    fake.script(0, (d) => {
      for (const c of "hi\n") w(d, 0, c.charCodeAt(0));
      w(d, 1, 0x01); // IER: received data
      w(d, 4, 0x08); // MCR: OUT2
    });
    fake.script(0, () => {
      m.uart.input(Uint8Array.of(0x79));
      return { reason: "system-event", vcpuId: 0, type: SystemEvent.SHUTDOWN, flags: 0n };
    });
    const r = await m.run();
    expect(Buffer.from(out).toString()).toBe("hi\n");
    expect(fake.named("irqLine")).toEqual([["irqLine", VM_FD, spiLine(0), 1]]);
    expect(r).toEqual({ status: 0, reason: "shutdown", message: "vCPU 0 powered the machine off (PSCI SYSTEM_OFF)" });
    m.close();
  });

  it("UART on streams: host input reaches the guest's receive register while it runs; output is written a line per write", async () => {
    const input = new PassThrough();
    const chunks: string[] = [];
    const output = new Writable({ write: (chunk: Buffer, _enc, done) => (chunks.push(chunk.toString()), done()) });
    const { m, fake } = machineWith({ cpus: 1, serial: { input, output } });
    const uart = m.description.memoryMap.uart.base;
    input.write("x");
    const received: number[] = [];
    fake.script(
      0,
      () => {},
      () => {},
      (d) => {
        received.push(Number(d.mmio(uart + 5, 1, false, 0, 0)) & 0x01, Number(d.mmio(uart, 1, false, 0, 0)));
        for (const c of "ab\ncd") d.mmio(uart, 1, true, c.charCodeAt(0), 0);
      },
      () => ({ reason: "system-event", vcpuId: 0, type: SystemEvent.SHUTDOWN, flags: 0n }),
    );
    await m.run();
    expect(received).toEqual([1, "x".charCodeAt(0)]);
    expect(chunks).toEqual(["ab\n", "cd"]);
    expect(input.listenerCount("data")).toBe(0);
    m.close();
  });

  it("ECAM: a virtio device on the real PciBus answers its vendor ID at the ECAM address of its bus/device/function; its legacy I/O BAR answers through the I/O window", () => {
    const { m } = machineWith();
    const rng = new VirtioPciFunction({ name: "virtio-rng0", device: new VirtioRng(), memory: m.memory, ioevents: m.ioEvents, logger: m.logger, transport: "transitional" });
    m.addPciDevice(rng);
    const at = m.pciFunctions().find((f) => f.device === rng)!.address;
    const ecam = m.description.memoryMap.pci.ecam.base;
    const cfg = (offset: number, size: SmallAccessSize) => m.mmio.read(ecamAddress(ecam, at.bus, at.device, at.function, offset), size);
    expect(cfg(0, 2)).toBe(VIRTIO_VENDOR_ID);
    expect(cfg(0, 4)).toBe(rng.configRead(0, 4));
    expect(m.mmio.read(ecamAddress(ecam, 0, at.device + 1, 0, 0), 2)).toBe(0xffff); // nothing there
    // I/O decode on; the legacy BAR's device status register (offset 0x12) through the MMIO I/O window.
    m.mmio.write(ecamAddress(ecam, at.bus, at.device, at.function, 4), 2, cfg(4, 2) | 0x1);
    const port = cfg(0x10, 4) & ~0x3;
    const io = m.description.memoryMap.pci.io;
    expect(port).toBeGreaterThanOrEqual(0);
    expect(port + 0x14).toBeLessThanOrEqual(io.size);
    m.mmio.write(io.base + port + 0x12, 1, 0x01);
    expect(m.mmio.read(io.base + port + 0x12, 1)).toBe(0x01);
    expect(m.pio.read(port + 0x12, 1)).toBe(0x01);
    m.close();
  });

  it("INTx: a function's INTA# raises the swizzled SPI through KVM_IRQ_LINE (GSI = SPI number)", () => {
    const { m, fake } = machineWith();
    const fn = new PciFunction({ name: "intx0", vendorId: 0x1234, deviceId: 1, classCode: 0xff0000, interruptPin: 1 });
    m.addPciDevice(fn, { device: 6 });
    const spi = pciIntxSpi(6, 1);
    expect(m.pci.intxRoutes().map((r) => [r.address.device, r.pin, r.gsi])).toEqual([[6, 1, spi]]);
    fn.intx.set(true);
    fn.intx.set(false);
    expect(fake.named("irqLine")).toEqual([
      ["irqLine", VM_FD, spiLine(spi), 1],
      ["irqLine", VM_FD, spiLine(spi), 0],
    ]);
    const efd = 77;
    m.interrupts.line(spi).irqfd!(efd, 78);
    expect(fake.named("irqfd")).toEqual([["irqfd", VM_FD, efd, spi, 78, false]]);
    m.close();
  });

  /** A function with a 64-bit MSI capability, programmed through ECAM as a driver would; returns a trigger. */
  function msiFunction(m: Arm64KvmMachine, device: number, address: number, data: number) {
    const fn = new PciFunction({ name: `msi${device}`, vendorId: 0x1234, deviceId: 2, classCode: 0xff0000 });
    const msi = new MsiCapability({ vectors: 1 });
    const cap = fn.addCapability(msi);
    m.addPciDevice(fn, { device });
    const ecam = m.description.memoryMap.pci.ecam.base;
    const w = (offset: number, size: SmallAccessSize, v: number) => m.mmio.write(ecamAddress(ecam, 0, device, 0, offset), size, v);
    w(cap + 4, 4, address);
    w(cap + 8, 4, 0);
    w(cap + 12, 2, data);
    w(cap + 2, 2, 0x1); // MSI enable
    w(4, 2, 0x4); // Bus Master Enable
    return () => msi.notify(0);
  }

  it("MSI with GICv3: an msi GSI route above the SPIs with the requester id as devid and an irqfd on it; KVM's SPI routes kept", () => {
    const { m, fake } = machineWith();
    const translater = m.description.memoryMap.gic.its!.base + 0x10040;
    const trigger = msiFunction(m, 3, translater, 5);
    const devid = requesterId({ bus: 0, device: 3, function: 0 });
    expect(devid).toBe(0x18);
    const table = fake.named("setGsiRouting").at(-1)![2] as Array<{ gsi: number; type: string; pin?: number }>;
    const spis = table.filter((r) => r.type === "irqchip");
    expect(spis).toHaveLength(96);
    expect(spis.every((r, i) => r.gsi === i && r.pin === i)).toBe(true);
    expect(table.filter((r) => r.type === "msi")).toEqual([{ gsi: 96, type: "msi", address: translater, data: 5, devid }]);
    const irqfds = fake.named("irqfd");
    expect(irqfds).toEqual([["irqfd", VM_FD, expect.any(Number), 96, -1, false]]);
    trigger();
    expect(m.msiRoutes!.triggers).toBe(1);
    expect(fake.named("signalMsi")).toEqual([]);
    m.close();
    // The route's irqfd is deassigned before the VM fd closes.
    expect(fake.indexOf("irqfd", VM_FD, irqfds[0]![2], 96, -1, true)).toBeLessThan(fake.indexOf("closeFd", VM_FD));
    expect(fake.indexOf("irqfd", VM_FD, irqfds[0]![2], 96, -1, true)).toBeGreaterThan(0);
  });

  it("MSI with GICv3 where KVM refuses the route: KVM_SIGNAL_MSI to the ITS with the requester id as devid", () => {
    const { m, fake, logger } = machineWith({}, fakeKvm({ failRouting: true }));
    const translater = m.description.memoryMap.gic.its!.base + 0x10040;
    msiFunction(m, 3, translater, 5)();
    expect(fake.named("signalMsi")).toEqual([["signalMsi", VM_FD, translater, 5, 0x18]]);
    expect(m.counters()).toMatchObject({ msiSignals: 1, msiFallbacks: 1 });
    expect(logger.lines.join("\n")).toMatch(/msi3 MSI: MSI through irqfd failed, falling back to KVM_SIGNAL_MSI/);
    m.close();
  });

  it("GICv2m: MSI_TYPER reports the DTB's base SPI and count, MSI_SETSPI_NS raises that SPI as an edge, and a device's MSI does the same", () => {
    const { m, fake } = machineWith({ gic: "v2" });
    const frame = m.description.memoryMap.gic.v2m!.base;
    const v2m = readDtb(m.description.dtb).root.children.find((c) => c.name.startsWith("interrupt-controller@"))!.children[0]!;
    const base = decodeCells(getProperty(v2m, "arm,msi-base-spi")!.value)[0]!;
    const count = decodeCells(getProperty(v2m, "arm,msi-num-spis")!.value)[0]!;
    expect(m.mmio.read(frame + V2mRegister.MSI_TYPER, 4)).toBe((base << 16) | count);
    m.mmio.write(frame + V2mRegister.MSI_SETSPI_NS, 4, base + 3);
    m.mmio.write(frame + V2mRegister.MSI_SETSPI_NS, 4, base + count); // not the frame's: dropped
    msiFunction(m, 4, frame + V2mRegister.MSI_SETSPI_NS, base + 9)();
    const line = (intid: number) => arm64IrqLine({ type: "spi", intid });
    expect(fake.named("irqLine")).toEqual([
      ["irqLine", VM_FD, line(base + 3), 1],
      ["irqLine", VM_FD, line(base + 3), 0],
      ["irqLine", VM_FD, line(base + 9), 1],
      ["irqLine", VM_FD, line(base + 9), 0],
    ]);
    expect(fake.named("signalMsi")).toEqual([]);
    expect(m.v2m!.refused).toBe(1);
    m.close();
  });

  it("ioeventfds for virtio doorbells are KVM ioeventfds on the VM", () => {
    const { m, fake } = machineWith();
    const h = m.ioEvents.add({ space: "mmio", address: 0x5000_1000, size: 2, datamatch: 1 }, () => {});
    expect(fake.named("ioeventfd").map(([, vm, address, len]) => [vm, address, len])).toEqual([[VM_FD, 0x5000_1000, 2]]);
    h.remove();
    m.close();
  });
});

describe("Arm64KvmMachine run loop", () => {
  it("PSCI SYSTEM_RESET ends the run with reason reset; powered-off secondaries are not entered until CPU_ON makes them runnable", async () => {
    const { m, fake } = machineWith({ cpus: 2 });
    fake.script(0, () => {}, (_d, v) => void v.mpState.set(1, Arm64MpState.RUNNABLE));
    fake.script(1, () => ({ reason: "system-event", vcpuId: 1, type: SystemEvent.RESET, flags: 0n }));
    const r = await m.run();
    expect(r).toEqual({ status: 0, reason: "reset", message: "vCPU 1 reset the machine (PSCI SYSTEM_RESET)" });
    expect(fake.named("vcpu.run").map(([, id]) => id)).toEqual([0, 0, 1]);
    m.close();
  });

  it("an internal error ends the run as an error naming the vCPU and PC; a throwing device stops it naming the device", async () => {
    const { m, fake } = machineWith({ cpus: 1 });
    fake.script(0, () => ({ reason: "internal-error", vcpuId: 0, suberror: 1, pc: 0x80001000n, bytes: new Uint8Array(), data: [] }));
    expect(await m.run()).toEqual({ status: 1, reason: "error", message: "vCPU 0: KVM internal error (suberror 1) at PC 0x80001000" });
    m.close();
    const second = machineWith({ cpus: 1 });
    second.m.mmio.register(0x5000_0000, 0x1000, "broken", { read: () => 0, write: () => { throw new Error("boom"); } });
    second.fake.script(0, (d) => void d.mmio(0x5000_0010, 4, true, 1, 0));
    expect(await second.m.run()).toEqual({ status: 1, reason: "error", message: "device broken failed on an MMIO write at 0x50000010: boom" });
    second.m.close();
  });

  it("pause() stops entering KVM_RUN until resume(), state kept and no spinning; stop() ends a paused machine", async () => {
    const { m, fake } = machineWith({ cpus: 1 });
    expect(m.pause()).toBe(false); // not running yet
    const runs = () => fake.named("vcpu.run").length;
    fake.script(0, () => void expect(m.pause()).toBe(true));
    fake.script(0, () => ({ reason: "system-event", vcpuId: 0, type: SystemEvent.SHUTDOWN, flags: 0n }));
    const running = m.run();
    await new Promise((r) => setTimeout(r, 20));
    expect(m.paused).toBe(true);
    expect(m.pause()).toBe(false);
    expect(runs()).toBe(1);
    expect(m.resume()).toBe(true);
    expect(m.resume()).toBe(false);
    expect(await running).toEqual({ status: 0, reason: "shutdown", message: "vCPU 0 powered the machine off (PSCI SYSTEM_OFF)" });
    expect(runs()).toBe(2);
    m.close();

    const second = machineWith({ cpus: 1 });
    second.fake.script(0, () => void second.m.pause());
    const stopped = second.m.run();
    await new Promise((r) => setTimeout(r, 10));
    second.m.stop("vmm stop");
    expect(await stopped).toEqual({ status: 1, reason: "stopped", message: "stopped: vmm stop" });
    expect(second.m.paused).toBe(false);
    second.m.close();
  });

  it("stop() ends a running machine with reason stopped; counters count MMIO exits; close() closes the VM once", async () => {
    const { m, fake } = machineWith({ cpus: 1 });
    fake.script(0, (d) => void d.mmio(m.description.memoryMap.uart.base + 7, 1, false, 0, 0), () => m.stop("SIGTERM"));
    expect(await m.run()).toEqual({ status: 1, reason: "stopped", message: "stopped: SIGTERM" });
    expect(m.counters()).toEqual({ mmioExits: 1, msiSignals: 0, msiFallbacks: 0 });
    await expect(m.run()).rejects.toThrow("a machine runs once");
    m.close();
    m.close();
    expect(fake.named("closeFd").filter(([, fd]) => fd === VM_FD)).toHaveLength(1);
    expect(fake.named("kvm.close")).toEqual([]); // the caller's KVM stays open
  });
});
