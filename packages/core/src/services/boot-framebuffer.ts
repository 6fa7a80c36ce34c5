/** Size of Linux's struct screen_info, the first bytes of x86 boot_params. */
export const SCREEN_INFO_SIZE = 0x40;

/** Gives the 64 bytes of struct screen_info for the framebuffer as it is when the kernel is loaded. */
export type ScreenInfoProvider = () => Uint8Array;

/**
 * Where a display device describes its framebuffer for a Linux boot (`Tokens.BootFramebuffer`). The machine does
 * not know display devices; one of them registers a provider at assembly time, and the machine's kernel loader
 * places what it returns in boot_params (screen_info), so vesafb or simplefb can use the framebuffer before any
 * driver programs the device. Offered by machines that boot Linux; a display checks
 * `container.isRegistered(Tokens.BootFramebuffer, true)` first.
 */
export interface BootFramebuffer {
  /** Registers the boot display; a second one is refused with a ConfigurationError (Linux takes one screen_info). */
  provide(name: string, provider: ScreenInfoProvider): void;
}
