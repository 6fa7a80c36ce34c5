import type { InjectionToken } from "tsyringe";
import type { AddressSpace } from "./address-space.js";
import type { GuestMemory } from "./guest-memory.js";
import type { InterruptController } from "./interrupts.js";
import type { Logger } from "./logger.js";
import type { DeviceType } from "./plugin/contract.js";
import type { DeviceQuirk } from "./plugin/quirks.js";
import type { IoEventRegistry, MemoryMapper } from "./services.js";
import type { BootFramebuffer } from "./services/boot-framebuffer.js";
import type { Keyboard } from "./services/keyboard.js";

// Symbol.for keys: a plugin that brings its own copy of @vmm/core still resolves the same services.
const token = <T>(name: string): InjectionToken<T> => Symbol.for(`@vmm/core:${name}`) as InjectionToken<T>;

/**
 * DI tokens of the services a machine provides to devices. Every machine registers the first seven; `Keyboard`
 * and `BootFramebuffer` only where the machine has them (check `container.isRegistered(token, true)`).
 */
export const Tokens = {
  GuestMemory: token<GuestMemory>("GuestMemory"),
  PortIo: token<AddressSpace>("PortIo"),
  Mmio: token<AddressSpace>("Mmio"),
  Interrupts: token<InterruptController>("Interrupts"),
  IoEvents: token<IoEventRegistry>("IoEvents"),
  MemoryMapper: token<MemoryMapper>("MemoryMapper"),
  Logger: token<Logger>("Logger"),
  /** The machine's keyboard, for displays (optional). */
  Keyboard: token<Keyboard>("Keyboard"),
  /** Where a display device registers the framebuffer Linux boots with (optional). */
  BootFramebuffer: token<BootFramebuffer>("BootFramebuffer"),
  /** Every device type a plugin provides (multi-registration; resolveAll). */
  DeviceType: token<DeviceType>("DeviceType"),
  /** Every passthrough device quirk a plugin provides (multi-registration; resolveAll; see registerQuirk). */
  Quirk: token<DeviceQuirk>("Quirk"),
} as const;
