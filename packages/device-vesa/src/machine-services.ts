/**
 * Services a machine may offer in the VM's container, looked up by their Symbol.for keys so this package does
 * not depend on a machine package (@vmm/machine registers them under the same keys as MachineTokens.Keyboard and
 * MachineTokens.BootFramebuffer). Only the members used here are declared.
 */
export interface MachineKeyboard {
  /** A key by X11 keysym went down or up. */
  press(keysym: number, down: boolean): unknown;
}

export interface MachineBootFramebuffer {
  /** Registers the provider of struct screen_info (64 bytes) for a Linux boot. */
  provide(name: string, screenInfo: () => Uint8Array): void;
}

export const MachineServices = {
  Keyboard: Symbol.for("@vmm/machine:Keyboard"),
  BootFramebuffer: Symbol.for("@vmm/machine:BootFramebuffer"),
} as const;
