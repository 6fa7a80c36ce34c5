// Arm64Vm, Arm64Vcpu and Vgic decide which native calls to make, in which order, with which numbers. There is no
// arm64 KVM here, so they run over an addon that records each call and answers like the arm64 half would; the
// numbers themselves are checked against the arm64 headers in arm64-abi.test.ts.
import { describe, expect, it } from "vitest";
import {
  Arm64Vm,
  Arm64VcpuAttr,
  arm64CoreRegId,
  arm64FeatureWords,
  arm64IrqLine,
  Arm64VcpuFeature,
  KvmDeviceType,
  KvmError,
  Arm64SysReg,
  VgicAddr,
  VgicCtrl,
  VgicGroup,
} from "../src/index.js";
import type { NativeArm64 } from "../src/native.js";

type Call = [string, ...unknown[]];
const VM_FD = 10;
const TARGET = 5; // KVM_ARM_TARGET_GENERIC_V8

/** An arm64 addon that records calls; `refuse` makes the named call throw the KvmError given. */
function recordingAddon(refuse: Record<string, KvmError> = {}) {
  const calls: Call[] = [];
  let nextFd = 20;
  const regs = new Map<bigint, Uint8Array>();
  const record = (name: string, ...args: unknown[]) => {
    calls.push([name, ...args]);
    if (refuse[name]) throw refuse[name];
  };
  class VcpuHandle {
    constructor(readonly fd: number) {
      record("VcpuHandle", fd);
    }
    init(target: number, features: number[]) {
      record(`vcpu${this.fd}.init`, target, features);
    }
    getOneReg(id: bigint) {
      record(`vcpu${this.fd}.getOneReg`, id);
      return regs.get(id) ?? new Uint8Array(Number(1n << ((id >> 52n) & 0xfn)));
    }
    setOneReg(id: bigint, bytes: Uint8Array) {
      record(`vcpu${this.fd}.setOneReg`, id, [...bytes]);
      regs.set(id, bytes);
    }
    getRegList() {
      return BigUint64Array.from(regs.keys());
    }
    close() {
      record(`vcpu${this.fd}.close`);
    }
  }
  const addon = {
    arch: "arm64",
    armPreferredTarget: (vm: number) => (record("armPreferredTarget", vm), { target: TARGET, features: [0, 0, 0, 0, 0, 0, 0] }),
    createVcpuFd: (vm: number, id: number) => (record("createVcpuFd", vm, id), nextFd++),
    createDevice: (vm: number, type: number, test: boolean) => (record("createDevice", vm, type, test), test ? undefined : nextFd++),
    setDeviceAttr: (...a: unknown[]) => record("setDeviceAttr", ...a),
    hasDeviceAttr: (...a: unknown[]) => (record("hasDeviceAttr", ...a), true),
    irqLine: (...a: unknown[]) => record("irqLine", ...a),
    signalMsi: (...a: unknown[]) => (record("signalMsi", ...a), 1),
    setGsiRouting: (...a: unknown[]) => record("setGsiRouting", ...a),
    closeFd: (fd: number) => record("closeFd", fd),
    VcpuHandle,
  };
  return { addon: addon as unknown as NativeArm64, calls };
}

const GIC = { version: 3, distributor: 0x3fff0000, redistributor: 0x3fef0000, its: 0x3fed0000, nrIrqs: 128 } as const;

describe("Arm64Vm and Arm64Vcpu over a recording addon", () => {
  it("initialises vCPUs for the preferred target, asked once: PSCI 0.2 on all, POWER_OFF on secondaries", () => {
    const { addon, calls } = recordingAddon();
    const vm = new Arm64Vm(VM_FD, 4096, addon);
    const boot = vm.createVcpu(0);
    const second = vm.createVcpu(1);
    boot.init();
    second.init({ powerOff: true });
    expect(calls.filter(([n]) => n === "armPreferredTarget")).toEqual([["armPreferredTarget", VM_FD]]);
    expect(calls.filter(([n]) => n.endsWith(".init"))).toEqual([
      ["vcpu20.init", TARGET, arm64FeatureWords([Arm64VcpuFeature.PSCI_0_2])],
      ["vcpu21.init", TARGET, arm64FeatureWords([Arm64VcpuFeature.PSCI_0_2, Arm64VcpuFeature.POWER_OFF])],
    ]);
  });

  it("reads and writes registers by id: core registers by name, 128-bit vector registers, MPIDR", () => {
    const { addon, calls } = recordingAddon();
    const vcpu = new Arm64Vm(VM_FD, 4096, addon).createVcpu(0);
    vcpu.setCoreReg("pc", 0x40080000);
    vcpu.setCoreReg("x0", 0x48000000n);
    expect(calls.filter(([n]) => n.endsWith("setOneReg"))).toEqual([
      ["vcpu20.setOneReg", arm64CoreRegId("pc"), [0, 0, 8, 0x40, 0, 0, 0, 0]],
      ["vcpu20.setOneReg", arm64CoreRegId("x0"), [0, 0, 0, 0x48, 0, 0, 0, 0]],
    ]);
    expect(vcpu.getCoreReg("pc")).toBe(0x40080000n);
    vcpu.setCoreReg("v7", 2n ** 100n);
    expect(vcpu.getCoreReg("v7")).toBe(2n ** 100n);
    expect(vcpu.mpidr()).toBe(0n);
    expect(calls.at(-1)).toEqual(["vcpu20.getOneReg", Arm64SysReg.MPIDR_EL1]);
    expect(vcpu.regList()).toEqual([arm64CoreRegId("pc"), arm64CoreRegId("x0"), arm64CoreRegId("v7")]);
    expect(() => vcpu.setCoreReg("fpsr", 2n ** 32n)).toThrow(RangeError);
  });

  it("creates a GICv3 with its ITS, places both, and initialises the GIC before the ITS", () => {
    const { addon, calls } = recordingAddon();
    const vm = new Arm64Vm(VM_FD, 4096, addon);
    const vgic = vm.createVgic(GIC);
    vgic.init();
    expect(calls).toEqual([
      ["createDevice", VM_FD, KvmDeviceType.ARM_VGIC_V3, false],
      ["setDeviceAttr", 20, VgicGroup.ADDR, VgicAddr.V3_DIST, 8, GIC.distributor],
      ["setDeviceAttr", 20, VgicGroup.ADDR, VgicAddr.V3_REDIST, 8, GIC.redistributor],
      ["setDeviceAttr", 20, VgicGroup.NR_IRQS, 0, 4, 128],
      ["createDevice", VM_FD, KvmDeviceType.ARM_VGIC_ITS, false],
      ["setDeviceAttr", 21, VgicGroup.ADDR, VgicAddr.ITS, 8, GIC.its],
      ["setDeviceAttr", 20, VgicGroup.CTRL, VgicCtrl.INIT, 0],
      ["setDeviceAttr", 21, VgicGroup.CTRL, VgicCtrl.INIT, 0],
    ]);
    expect([vm.vgic, vgic.fd, vgic.itsFd, vgic.nrIrqs]).toEqual([vgic, 20, 21, 128]);
    expect(() => vm.createVgic(GIC)).toThrow(/already has a vGIC/);
  });

  it("closes the GIC it made when placing it fails, and has none afterwards", () => {
    const refused = new KvmError("KVM_SET_DEVICE_ATTR", "EEXIST", 17);
    const { addon, calls } = recordingAddon({ setDeviceAttr: refused });
    const vm = new Arm64Vm(VM_FD, 4096, addon);
    expect(() => vm.createVgic(GIC)).toThrow(refused);
    expect(calls.at(-1)).toEqual(["closeFd", 20]);
    expect(vm.vgic).toBeUndefined();
  });

  it("raises lines with arm64's KVM_IRQ_LINE encoding and refuses SPIs the vGIC does not have", () => {
    const { addon, calls } = recordingAddon();
    const vm = new Arm64Vm(VM_FD, 4096, addon);
    vm.createVgic(GIC);
    vm.irqLine({ type: "spi", intid: 40 }, true);
    vm.irqLine({ type: "ppi", intid: 23, vcpu: 1 }, false);
    expect(calls.slice(-2)).toEqual([
      ["irqLine", VM_FD, arm64IrqLine({ type: "spi", intid: 40 }), 1],
      ["irqLine", VM_FD, arm64IrqLine({ type: "ppi", intid: 23, vcpu: 1 }), 0],
    ]);
    expect(() => vm.irqLine({ type: "spi", intid: 128 }, true)).toThrow(/beyond the vGIC's 128 interrupts/);
  });

  it("routes GSIs to SPI pins of the one irqchip and MSIs with the ITS device id", () => {
    const { addon, calls } = recordingAddon();
    const vm = new Arm64Vm(VM_FD, 4096, addon);
    vm.createVgic(GIC);
    vm.setGsiRouting([
      { gsi: 0, type: "irqchip", pin: 0 },
      { gsi: 64, type: "msi", address: 0x3fed0040, data: 5, devid: 0x0008 },
    ]);
    expect(calls.at(-1)).toEqual([
      "setGsiRouting",
      VM_FD,
      [
        { gsi: 0, type: "irqchip", irqchip: 0, pin: 0 },
        { gsi: 64, type: "msi", address: 0x3fed0040, data: 5, devid: 8 },
      ],
    ]);
    expect(() => vm.setGsiRouting([{ gsi: 1, type: "irqchip", pin: 96 }])).toThrow(RangeError);
    expect(vm.signalMsi(0x3fed0040, 7, 0x10)).toBe(1);
    expect(calls.at(-1)).toEqual(["signalMsi", VM_FD, 0x3fed0040, 7, 0x10]);
  });

  it("initialises a vCPU's PMU: its interrupt, then init, on the vCPU fd", () => {
    const { addon, calls } = recordingAddon();
    const vcpu = new Arm64Vm(VM_FD, 4096, addon).createVcpu(0);
    vcpu.initPmu(23);
    expect(calls.slice(-3)).toEqual([
      ["hasDeviceAttr", 20, Arm64VcpuAttr.PMU_V3_INIT.group, Arm64VcpuAttr.PMU_V3_INIT.attr],
      ["setDeviceAttr", 20, 0, 0, 4, 23],
      ["setDeviceAttr", 20, 0, 1, 0, undefined],
    ]);
    expect(() => vcpu.setAttr(Arm64VcpuAttr.PMU_V3_INIT, 1)).toThrow(/takes no value/);
    expect(() => vcpu.setAttr(Arm64VcpuAttr.TIMER_IRQ_VTIMER)).toThrow(/4-byte value/);
    expect(() => vcpu.initPmu(8)).toThrow(RangeError);
  });

  it("answers hasDevice from KVM_CREATE_DEVICE_TEST, ENODEV meaning no", () => {
    const { addon } = recordingAddon({ createDevice: new KvmError("KVM_CREATE_DEVICE", "ENODEV", 19) });
    expect(new Arm64Vm(VM_FD, 4096, addon).hasDevice(KvmDeviceType.ARM_VGIC_V3)).toBe(false);
    const other = recordingAddon({ createDevice: new KvmError("KVM_CREATE_DEVICE", "EBADF", 9) });
    expect(() => new Arm64Vm(VM_FD, 4096, other.addon).hasDevice(KvmDeviceType.ARM_VGIC_V3)).toThrow(KvmError);
  });

  it("closes the vGIC's fds, the vCPUs and then the VM", () => {
    const { addon, calls } = recordingAddon();
    const vm = new Arm64Vm(VM_FD, 4096, addon);
    const vcpu = vm.createVcpu(0);
    vm.createVgic(GIC);
    calls.length = 0;
    vm.close();
    expect(calls).toEqual([["closeFd", 22], ["closeFd", 21], ["vcpu20.close"], ["closeFd", VM_FD]]);
    expect(() => vcpu.getCoreReg("pc")).toThrow(expect.objectContaining({ errno: "EBADF" }));
    expect(() => vm.createVcpu(1)).toThrow(expect.objectContaining({ errno: "EBADF" }));
  });
});
