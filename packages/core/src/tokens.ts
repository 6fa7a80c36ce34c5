import type { InjectionToken } from "tsyringe";
import type { AddressSpace } from "./address-space.js";
import type { GuestMemory } from "./guest-memory.js";
import type { InterruptController } from "./interrupts.js";
import type { Logger } from "./logger.js";
import type { DeviceType } from "./plugin/contract.js";
import type { IoEventRegistry, MemoryMapper } from "./services.js";

// Symbol.for keys: a plugin that brings its own copy of @vmm/core still resolves the same services.
const token = <T>(name: string): InjectionToken<T> => Symbol.for(`@vmm/core:${name}`) as InjectionToken<T>;

/** DI tokens of the services every machine provides to devices. */
export const Tokens = {
  GuestMemory: token<GuestMemory>("GuestMemory"),
  PortIo: token<AddressSpace>("PortIo"),
  Mmio: token<AddressSpace>("Mmio"),
  Interrupts: token<InterruptController>("Interrupts"),
  IoEvents: token<IoEventRegistry>("IoEvents"),
  MemoryMapper: token<MemoryMapper>("MemoryMapper"),
  Logger: token<Logger>("Logger"),
  /** Every device type a plugin provides (multi-registration; resolveAll). */
  DeviceType: token<DeviceType>("DeviceType"),
} as const;
