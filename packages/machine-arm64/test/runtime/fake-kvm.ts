// kvm-native's real Arm64Vm, Arm64Vcpu and Vgic over an addon that records every native call and answers as the
// arm64 half would (the technique of kvm-native's test/arm64-vm.test.ts): the machine's set-up is checked call by
// call, and each vCPU's KVM_RUN is a script of steps that make MMIO exits and end in a run result.
import { Arm64MpState, Arm64Vm, KvmError, type Arm64ExitDispatch, type Arm64VcpuRunResult, type Arm64VmOptions } from "@vmm/kvm-native";
import type { Arm64Kvm } from "../../src/index.js";

export type Call = [string, ...unknown[]];
export const VM_FD = 10;
export const TARGET = 5;
/** KVM_ARM_VCPU_POWER_OFF's bit in the first feature word. */
const POWER_OFF_BIT = 1 << 0;

/** One KVM_RUN: MMIO exits through `dispatch`, then the run's result (default "yield"). */
export type RunStep = (dispatch: Arm64ExitDispatch, vcpus: FakeVcpus) => Arm64VcpuRunResult | void;

export interface FakeVcpus {
  /** MP state by vCPU id (what KVM_GET_MP_STATE answers); a step sets it as PSCI CPU_ON would. */
  readonly mpState: Map<number, number>;
}

export interface FakeKvmOptions {
  /** Whether KVM_CREATE_DEVICE_TEST finds a GICv3 (default true). */
  readonly gicV3?: boolean;
  /** KVM_CAP_NR_VCPUS (default 8). */
  readonly nrVcpus?: number;
  /** KVM_SET_GSI_ROUTING fails (EINVAL). */
  readonly failRouting?: boolean;
}

export function fakeKvm(options: FakeKvmOptions = {}) {
  const calls: Call[] = [];
  const scripts = new Map<number, RunStep[]>();
  const vcpus: FakeVcpus = { mpState: new Map() };
  const fdToId = new Map<number, number>();
  let nextFd = 20;
  const record = (name: string, ...args: unknown[]) => void calls.push([name, ...args]);

  class VcpuHandle {
    constructor(
      readonly fd: number,
      _mmap: number,
      readonly id: number,
    ) {
      fdToId.set(fd, id);
    }
    init(target: number, features: number[]) {
      record("vcpu.init", this.id, target, features);
      vcpus.mpState.set(this.id, features[0]! & POWER_OFF_BIT ? Arm64MpState.STOPPED : Arm64MpState.RUNNABLE);
    }
    setOneReg(id: bigint, bytes: Uint8Array) {
      record("vcpu.setOneReg", this.id, id, new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
    }
    getOneReg(id: bigint) {
      return new Uint8Array(Number(1n << ((id >> 52n) & 0xfn)));
    }
    getRegList() {
      return new BigUint64Array();
    }
    getMpState() {
      return vcpus.mpState.get(this.id)!;
    }
    setMpState(s: number) {
      vcpus.mpState.set(this.id, s);
    }
    run(dispatch: Arm64ExitDispatch): Arm64VcpuRunResult {
      record("vcpu.run", this.id);
      const step = scripts.get(this.id)?.shift();
      return (step?.(dispatch, vcpus) ?? { reason: "yield" }) as Arm64VcpuRunResult;
    }
    requestStop() {}
    kick() {}
    close() {
      record("vcpu.close", this.id);
    }
  }

  const addon = {
    arch: "arm64",
    armPreferredTarget: () => ({ target: TARGET, features: [0, 0, 0, 0, 0, 0, 0] }),
    allocateSharedMemory: (size: number, chunkSize: number) => {
      record("allocateSharedMemory", size);
      const chunks: ArrayBuffer[] = [];
      for (let at = 0; at < size; at += chunkSize) chunks.push(new ArrayBuffer(Math.min(chunkSize, size - at)));
      return { fd: nextFd++, chunks };
    },
    allocateMemory: (size: number) => [new ArrayBuffer(size)],
    setUserMemoryRegion: (vm: number, slot: number, flags: number, gpa: number, memory: readonly Uint8Array[] | Uint8Array | undefined) =>
      record("setUserMemoryRegion", vm, slot, flags, gpa, Array.isArray(memory) ? memory.reduce((n, c) => n + c.byteLength, 0) : (memory as Uint8Array | undefined)?.byteLength),
    createVcpuFd: (vm: number, id: number) => (record("createVcpuFd", vm, id), nextFd++),
    createDevice: (vm: number, type: number, test: boolean) => {
      record("createDevice", vm, type, test);
      if (test && type === 7 && options.gicV3 === false) throw new KvmError("KVM_CREATE_DEVICE", "ENODEV", 19);
      return test ? undefined : nextFd++;
    },
    setDeviceAttr: (fd: number, group: number, attr: number, _width: number, value?: number | bigint) => record("setDeviceAttr", fd, group, attr, value),
    hasDeviceAttr: () => true,
    irqLine: (vm: number, irq: number, level: number) => record("irqLine", vm, irq, level),
    signalMsi: (vm: number, address: number, data: number, devid?: number) => (record("signalMsi", vm, address, data, devid), 1),
    setGsiRouting: (vm: number, entries: object[]) => {
      record("setGsiRouting", vm, entries);
      if (options.failRouting) throw new KvmError("KVM_SET_GSI_ROUTING", "EINVAL", 22);
    },
    irqfd: (vm: number, fd: number, gsi: number, resample: number, deassign: boolean) => record("irqfd", vm, fd, gsi, resample, deassign),
    ioeventfd: (vm: number, fd: number, address: number, len: number, flags: number) => record("ioeventfd", vm, address, len, flags),
    closeFd: (fd: number) => record("closeFd", fd),
    VcpuHandle,
  };

  let vm: Arm64Vm | undefined;
  const kvm: Arm64Kvm = {
    createArm64Vm: (o?: Arm64VmOptions) => {
      record("createArm64Vm", o);
      vm = new Arm64Vm(VM_FD, 4096, addon as unknown as ConstructorParameters<typeof Arm64Vm>[2]);
      return vm;
    },
    checkExtension: () => options.nrVcpus ?? 8,
    close: () => record("kvm.close"),
  };
  return {
    kvm,
    calls,
    vcpus,
    /** What vCPU `id`'s next KVM_RUNs do, in order. */
    script: (id: number, ...steps: RunStep[]) => scripts.set(id, [...(scripts.get(id) ?? []), ...steps]),
    named: (name: string) => calls.filter(([n]) => n === name),
    indexOf: (name: string, ...args: unknown[]) => calls.findIndex(([n, ...a]) => n === name && args.every((x, i) => Object.is(a[i], x))),
  };
}

/** A minimal arm64 Image: booting.rst's 64-byte header (text_offset 0, 4K pages) and recognisable bytes after it. */
export function arm64Image(size = 64 * 1024): Uint8Array {
  const bytes = new Uint8Array(size);
  const v = new DataView(bytes.buffer);
  v.setBigUint64(8, 0n, true);
  v.setBigUint64(16, BigInt(size), true);
  v.setBigUint64(24, 2n, true);
  v.setUint32(0x38, 0x644d5241, true);
  for (let i = 64; i < size; i++) bytes[i] = (i * 7) & 0xff;
  return bytes;
}
