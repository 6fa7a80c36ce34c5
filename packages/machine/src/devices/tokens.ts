import type { InjectionToken } from "tsyringe";
import { MachineTokens as ServiceTokens } from "../services/msi-routes.js";
import type { BootFramebuffer } from "./boot-framebuffer.js";
import type { Keyboard } from "./keyboard.js";

/**
 * Machine-specific services in the VM's container, beside core's Tokens. Symbol.for keys, so a device package
 * can look them up without importing @vmm/machine (device-vesa does).
 */
export const MachineTokens = {
  ...ServiceTokens,
  /** The PS/2 keyboard: `press(keysym, down)`. */
  Keyboard: Symbol.for("@vmm/machine:Keyboard") as InjectionToken<Keyboard>,
  /** Where a display device registers the framebuffer Linux boots with (screen_info). */
  BootFramebuffer: Symbol.for("@vmm/machine:BootFramebuffer") as InjectionToken<BootFramebuffer>,
} as const;
