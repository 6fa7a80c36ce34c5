// Loads the compiled addon (prebuilds, then build/Release) once, on first use, so that importing the package
// never fails on a machine without a build.
import { addonLoader, type SyscallError } from "@vmm/addon-build/runtime";
import { HostIoError } from "./errors.js";

export interface NativePoll {
  close(): void;
  ref(): void;
  unref(): void;
}

export interface NativeReadablePoll extends NativePoll {
  pause(): void;
  resume(): void;
}

export interface NativeAddon {
  setErrorClass(ctor: typeof SyscallError): void;
  eventfdCreate(): number;
  eventfdWrite(fd: number, value: number | bigint): void;
  eventfdRead(fd: number): bigint | null;
  EventFdPoll: new (fd: number, callback: (count: bigint) => void) => NativePoll;
  ReadablePoll: new (fd: number, callback: () => void) => NativeReadablePoll;
  tapOpen(device: string, name: string, vnetHdrSize: number): { fd: number; name: string };
  tapRead(fd: number, buffer: Uint8Array): number;
  tapWrite(fd: number, frame: Uint8Array): number;
  readMessage(fd: number, buffer: Uint8Array): number;
  writeMessage(fd: number, bytes: Uint8Array): number;
  lockFile(fd: number, mode: "shared" | "exclusive" | "unlock"): boolean;
  blockDeviceSize(fd: number): number;
  memfdCreate(name: string, allowSealing: boolean): number;
  socketPair(seqpacket: boolean): [number, number];
  unixConnect(path: string, seqpacket: boolean): number;
  sendFds(fd: number, data: Uint8Array, fds: readonly number[]): number;
  recvFds(fd: number, buffer: Uint8Array, maxFds: number): { bytes: number; fds: number[] } | null;
  unixListen(path: string, seqpacket: boolean): number;
  unixAccept(fd: number): number | null;
  waitReadable(fd: number, timeoutMs: number): boolean;
  waitAnyReadable(fds: readonly number[], timeoutMs: number): number;
  waitWritable(fd: number, timeoutMs: number): boolean;
  unixDgramBind(path: string): number;
  unixDgramConnect(fd: number, path: string): void;
  mapFd(fd: number, offset: number, length: number, writable: boolean): ArrayBuffer;
  bufferAddress(bytes: Uint8Array): bigint;
  viewMapping(address: bigint, length: number): ArrayBuffer;
  ioctl(fd: number, request: number, buffer: Uint8Array): number;
  ioctlValue(fd: number, request: number, value: number | bigint): number;
}

const loader = addonLoader<NativeAddon>(import.meta.url, "@vmm/host-io", HostIoError);

/** The package root (one level above src/ or dist/), where build/Release lives. */
export const packageRoot = loader.root;

/** The addon, or the Error that says why it could not be loaded (remembered). */
export const tryLoadNative = (): NativeAddon | Error => loader.tryLoad();

export const native = (): NativeAddon => loader.load();
