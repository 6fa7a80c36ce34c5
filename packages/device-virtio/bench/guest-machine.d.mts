// Types of guest-machine.mjs for the TypeScript tests that use it.
import type { GuestMemory, IoEventRegistry, Logger } from "@vmm/core";
import type { Machine, MachineResult } from "@vmm/machine";

export interface GuestMachineFunctionOptions<D> {
  name: string;
  device: D;
  memory: GuestMemory;
  ioevents: IoEventRegistry;
  logger: Logger;
}

export interface GuestMachineOptions<D, F, T> {
  elf: string;
  command: string;
  PciFunction: new (options: GuestMachineFunctionOptions<D>) => F;
  name: string;
  device: D;
  ioevents?: (machine: Machine) => IoEventRegistry;
  onOutput?: (text: string, now: bigint) => void;
  look?: (machine: Machine) => T;
}

export interface GuestMachineRun<F, T> {
  result: MachineResult;
  text: string;
  fn: F;
  seen: T;
  log: string[];
}

export function runGuestMachine<D, F extends { close(): Promise<void> }, T = undefined>(options: GuestMachineOptions<D, F, T>): Promise<GuestMachineRun<F, T>>;
