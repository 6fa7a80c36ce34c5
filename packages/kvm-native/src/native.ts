// Loads the compiled addon (prebuilds, then build/Release) once, on first use, so that importing the
// package never fails on machines without a build or without KVM.
import { addonLoader, type SyscallError } from "@vmm/addon-build/runtime";
import { KvmError } from "./errors.js";
import type { CpuidEntry, Fpu, FpuInput, MsrEntry, Regs, RegsInput, VcpuRunResult, Sregs } from "./types.js";

export interface NativeVcpu {
  run(dispatch: object, maxSliceMs: number, immediateSliceMs: number): VcpuRunResult;
  requestStop(): void;
  kick(): void;
  close(): void;
  getRegs(): Regs;
  setRegs(regs: RegsInput): void;
  getSregs(): Sregs;
  setSregs(sregs: object): void;
  getFpu(): Fpu;
  setFpu(fpu: FpuInput): void;
  getMsrs(indices: number[]): MsrEntry[];
  setMsrs(entries: Array<{ index: number; value: number | bigint }>): number;
  setCpuid(entries: CpuidEntry[]): void;
  getMpState(): number;
  setMpState(state: number): void;
  getLapic(): Uint8Array;
  setLapic(state: Uint8Array): void;
  setPmTimer(port: number, startNs: bigint): void;
}

export interface NativeAddon {
  setErrorClass(ctor: typeof SyscallError): void;
  openDevice(path: string): number;
  closeFd(fd: number): void;
  getApiVersion(fd: number): number;
  checkExtension(fd: number, cap: number): number;
  getVcpuMmapSize(fd: number): number;
  createVm(fd: number): number;
  getSupportedCpuid(fd: number): CpuidEntry[];
  allocateMemory(size: number, chunkSize: number): ArrayBuffer[];
  allocateSharedMemory(size: number, chunkSize: number, name: string): { fd: number; chunks: ArrayBuffer[] };
  setUserMemoryRegion(vmFd: number, slot: number, flags: number, gpa: number, memory: Uint8Array | readonly Uint8Array[] | undefined): void;
  getDirtyLog(vmFd: number, slot: number, pages: number): Uint8Array;
  setTssAddr(vmFd: number, addr: number): void;
  setIdentityMapAddr(vmFd: number, addr: number): void;
  createIrqchip(vmFd: number): void;
  createPit2(vmFd: number): void;
  irqLine(vmFd: number, gsi: number, level: number): void;
  signalMsi(vmFd: number, address: number, data: number): number;
  setGsiRouting(vmFd: number, entries: object[]): void;
  irqfd(vmFd: number, fd: number, gsi: number, resampleFd: number, deassign: boolean): void;
  ioeventfd(vmFd: number, fd: number, address: number, len: number, flags: number, datamatch: number | bigint): void;
  createVcpuFd(vmFd: number, id: number): number;
  VcpuHandle: new (fd: number, mmapSize: number, id: number) => NativeVcpu;
}

const loader = addonLoader<NativeAddon>(import.meta.url, "@vmm/kvm-native", KvmError);

/** The package root (one level above src/ or dist/), where build/Release lives. */
export const packageRoot = loader.root;

/** The addon, or the Error that says why it could not be loaded (remembered). */
export const tryLoadNative = (): NativeAddon | Error => loader.tryLoad();

export const native = (): NativeAddon => loader.load();
