// Loads the compiled addon (prebuilds, then build/Release) once, on first use, so that importing the package
// never fails on a machine without a build.
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
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
  setErrorClass(ctor: typeof HostIoError): void;
  eventfdCreate(): number;
  eventfdWrite(fd: number, value: number | bigint): void;
  eventfdRead(fd: number): bigint | null;
  EventFdPoll: new (fd: number, callback: (count: bigint) => void) => NativePoll;
  ReadablePoll: new (fd: number, callback: () => void) => NativeReadablePoll;
  tapOpen(device: string, name: string, vnetHdrSize: number): { fd: number; name: string };
  tapRead(fd: number, buffer: Uint8Array): number;
  tapWrite(fd: number, frame: Uint8Array): number;
  lockFile(fd: number, mode: "shared" | "exclusive" | "unlock"): boolean;
  blockDeviceSize(fd: number): number;
  memfdCreate(name: string, allowSealing: boolean): number;
  socketPair(seqpacket: boolean): [number, number];
  unixConnect(path: string, seqpacket: boolean): number;
  sendFds(fd: number, data: Uint8Array, fds: readonly number[]): number;
  recvFds(fd: number, buffer: Uint8Array, maxFds: number): { bytes: number; fds: number[] } | null;
}

let cached: NativeAddon | undefined;
let loadError: Error | undefined;

/** The package root (one level above src/ or dist/), where build/Release lives. */
export const packageRoot = join(dirname(fileURLToPath(import.meta.url)), "..");

export function tryLoadNative(): NativeAddon | Error {
  if (cached) return cached;
  if (loadError) return loadError;
  try {
    const require = createRequire(import.meta.url);
    const load = require("node-gyp-build") as (dir: string) => NativeAddon;
    const addon = load(packageRoot);
    addon.setErrorClass(HostIoError);
    cached = addon;
    return addon;
  } catch (e) {
    loadError = new Error(`the host-io addon is not built (run "pnpm --filter @vmm/host-io build"): ${(e as Error).message}`);
    return loadError;
  }
}

export function native(): NativeAddon {
  const n = tryLoadNative();
  if (n instanceof Error) throw n;
  return n;
}
