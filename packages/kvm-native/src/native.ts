// Loads the compiled addon (prebuilds, then build/Release) once, on first use, so that importing the
// package never fails on machines without a build or without KVM. The addon has a shared part and the
// host architecture's half (its `arch` export says which).
import { addonLoader, type SyscallError } from "@vmm/addon-build/runtime";
import { KvmArchitectureError, type KvmArch } from "./arch.js";
import { KvmError } from "./errors.js";
import type { Arm64VcpuRunResult } from "./arm64/types.js";
import type { CpuidEntry, Fpu, FpuInput, MsrEntry, Regs, RegsInput, VcpuRunResult, Sregs } from "./types.js";

/** A vCPU handle's calls on every architecture. */
export interface NativeVcpuCommon {
  run(dispatch: object, maxSliceMs: number, immediateSliceMs: number): unknown;
  requestStop(): void;
  kick(): void;
  /** KVM_RUN on a native thread of the vCPU's own; exits that need JS come back through a thread-safe call. */
  startThread(dispatch: object, spinNs: number): Promise<unknown>;
  /** Kicks the thread and joins it (answering an exit it waits on); false from this vCPU's own exit callback. */
  stopThread(): boolean;
  close(): void;
  getMpState(): number;
  setMpState(state: number): void;
  /** KVM_GET_STATS_FD: a new fd of the vCPU's binary statistics (the caller closes it). */
  statsFd(): number;
}

/** An x86 vCPU handle. */
export interface NativeVcpu extends NativeVcpuCommon {
  run(dispatch: object, maxSliceMs: number, immediateSliceMs: number): VcpuRunResult;
  getRegs(): Regs;
  setRegs(regs: RegsInput): void;
  getSregs(): Sregs;
  setSregs(sregs: object): void;
  getFpu(): Fpu;
  setFpu(fpu: FpuInput): void;
  getMsrs(indices: number[]): MsrEntry[];
  setMsrs(entries: Array<{ index: number; value: number | bigint }>): number;
  setCpuid(entries: CpuidEntry[]): void;
  getLapic(): Uint8Array;
  setLapic(state: Uint8Array): void;
  setPmTimer(port: number, startNs: bigint): void;
  /** KVM_GET_XSAVE (size 4096) or KVM_GET_XSAVE2 (larger). */
  getXsave(size: number): Uint8Array;
  setXsave(state: Uint8Array): void;
  getXcrs(): Array<{ xcr: number; value: bigint }>;
  setXcrs(xcrs: Array<{ xcr: number; value: number | bigint }>): void;
  getVcpuEvents(): Uint8Array;
  setVcpuEvents(state: Uint8Array): void;
  getDebugRegs(): Uint8Array;
  setDebugRegs(state: Uint8Array): void;
  getTscKhz(): number;
  setTscKhz(khz: number): void;
}

/** An arm64 vCPU handle. */
export interface NativeArm64Vcpu extends NativeVcpuCommon {
  run(dispatch: object, maxSliceMs: number, immediateSliceMs: number): Arm64VcpuRunResult;
  init(target: number, features: number[]): void;
  getOneReg(id: bigint): Uint8Array;
  setOneReg(id: bigint, bytes: Uint8Array): void;
  getRegList(): BigUint64Array;
}

/** The calls both halves have. */
export interface NativeCommon {
  readonly arch: KvmArch;
  setErrorClass(ctor: typeof SyscallError): void;
  openDevice(path: string): number;
  closeFd(fd: number): void;
  getApiVersion(fd: number): number;
  checkExtension(fd: number, cap: number): number;
  getVcpuMmapSize(fd: number): number;
  createVm(fd: number, type?: number): number;
  allocateMemory(size: number, chunkSize: number): ArrayBuffer[];
  allocateSharedMemory(size: number, chunkSize: number, name: string): { fd: number; chunks: ArrayBuffer[] };
  seekFile(fd: number, offset: number, data: boolean): number;
  setUserMemoryRegion(vmFd: number, slot: number, flags: number, gpa: number, memory: Uint8Array | readonly Uint8Array[] | undefined): void;
  getDirtyLog(vmFd: number, slot: number, pages: number): Uint8Array;
  irqLine(vmFd: number, irq: number, level: number): void;
  signalMsi(vmFd: number, address: number, data: number, devid?: number): number;
  setGsiRouting(vmFd: number, entries: object[]): void;
  irqfd(vmFd: number, fd: number, gsi: number, resampleFd: number, deassign: boolean): void;
  ioeventfd(vmFd: number, fd: number, address: number, len: number, flags: number, datamatch: number | bigint): void;
  createVcpuFd(vmFd: number, id: number): number;
  /** KVM_CREATE_DEVICE: the device fd, or undefined with `test` (only whether the type can be created). */
  createDevice(vmFd: number, type: number, test: boolean): number | undefined;
  setDeviceAttr(fd: number, group: number, attr: number | bigint, width: 0 | 4 | 8, value?: number | bigint): void;
  getDeviceAttr(fd: number, group: number, attr: number | bigint, width: 4 | 8): bigint;
  hasDeviceAttr(fd: number, group: number, attr: number | bigint): boolean;
  VcpuHandle: new (fd: number, mmapSize: number, id: number) => NativeVcpuCommon;
  /** userfaultfd(2), close-on-exec and non-blocking. */
  userfaultfdCreate(): number;
  /** USERFAULTFD_IOC_NEW on the device node (/dev/userfaultfd). */
  userfaultfdCreateFromDevice(path: string): number;
  uffdApi(uffd: number, features: number | bigint): { features: bigint; ioctls: bigint };
  /** UFFDIO_REGISTER in MISSING mode; the ioctls the range allows. */
  uffdRegister(uffd: number, memory: Uint8Array): bigint;
  uffdUnregister(uffd: number, memory: Uint8Array): void;
  UserfaultPagerHandle: new (
    uffd: number,
    regions: ReadonlyArray<{ memory: Uint8Array; fd: number; offset: number }>,
    threads: number,
  ) => NativeUserfaultPager;
}

/** The handler threads of one userfaultfd (native/uffd.cc). */
export interface NativeUserfaultPager {
  stats(): { faults: number; pagesCopied: number; zeroPages: number; errors: number };
  /** Copies every non-zero page not yet present on a thread; `done(false)` when stop() came first. */
  populate(done: (finished: boolean) => void): void;
  /** Stops and joins the threads (idempotent); the uffd stays open. */
  stop(): void;
}

/** An addon built on x86_64. */
export interface NativeX86 extends NativeCommon {
  readonly arch: "x86_64";
  getSupportedCpuid(fd: number): CpuidEntry[];
  setTssAddr(vmFd: number, addr: number): void;
  setIdentityMapAddr(vmFd: number, addr: number): void;
  createIrqchip(vmFd: number): void;
  createPit2(vmFd: number): void;
  getMsrIndexList(fd: number): number[];
  getIrqchip(vmFd: number, chip: number): Uint8Array;
  setIrqchip(vmFd: number, chip: number, state: Uint8Array): void;
  getPit2(vmFd: number): Uint8Array;
  setPit2(vmFd: number, state: Uint8Array): void;
  getClock(vmFd: number): { clock: bigint; flags: number };
  setClock(vmFd: number, clock: bigint): void;
  VcpuHandle: new (fd: number, mmapSize: number, id: number) => NativeVcpu;
}

/** An addon built on arm64. */
export interface NativeArm64 extends NativeCommon {
  readonly arch: "arm64";
  armPreferredTarget(vmFd: number): { target: number; features: number[] };
  VcpuHandle: new (fd: number, mmapSize: number, id: number) => NativeArm64Vcpu;
}

export type NativeAddon = NativeX86 | NativeArm64;

const loader = addonLoader<NativeAddon>(import.meta.url, "@vmm/kvm-native", KvmError);

/** The package root (one level above src/ or dist/), where build/Release lives. */
export const packageRoot = loader.root;

/** The addon, or the Error that says why it could not be loaded (remembered). */
export const tryLoadNative = (): NativeAddon | Error => loader.tryLoad();

export const native = (): NativeAddon => loader.load();

/** The x86 half; `what` names the caller in the error an arm64 build throws. */
export function x86Native(what: string): NativeX86 {
  const n = native();
  if (n.arch !== "x86_64") throw new KvmArchitectureError("x86_64", n.arch, what);
  return n;
}

/** The arm64 half; `what` names the caller in the error an x86_64 build throws. */
export function arm64Native(what: string): NativeArm64 {
  const n = native();
  if (n.arch !== "arm64") throw new KvmArchitectureError("arm64", n.arch, what);
  return n;
}
