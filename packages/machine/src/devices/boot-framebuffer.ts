import { ConfigurationError } from "@vmm/core";

/** Size of Linux's struct screen_info, the first bytes of x86 boot_params. */
export const SCREEN_INFO_SIZE = 0x40;
/** Offset of orig_video_isVGA in struct screen_info (0 = no display described). */
const ORIG_VIDEO_IS_VGA = 0x0f;

/** Gives the 64 bytes of struct screen_info for the framebuffer as it is when the kernel is loaded. */
export type ScreenInfoProvider = () => Uint8Array;

/**
 * Where a display device describes its framebuffer for a Linux boot (`MachineTokens.BootFramebuffer`). The
 * machine does not know display devices; one of them registers a provider at assembly time, and the bzImage
 * loader places what it returns at offset 0 of boot_params (screen_info), so vesafb or simplefb can use the
 * framebuffer before any driver programs the device.
 */
export class BootFramebuffer {
  private source: { name: string; provider: ScreenInfoProvider } | undefined;

  /** Registers the boot display; a second one is refused (Linux takes one screen_info). */
  provide(name: string, provider: ScreenInfoProvider): void {
    if (this.source) throw new ConfigurationError(`${name}: ${this.source.name} already provides the boot framebuffer`);
    this.source = { name, provider };
  }

  /** Name of the device that provides it, if any. */
  get provider(): string | undefined {
    return this.source?.name;
  }

  /** The checked screen_info bytes, or undefined when no device provides a framebuffer. */
  screenInfo(): Uint8Array | undefined {
    if (!this.source) return undefined;
    const bytes = this.source.provider();
    if (!(bytes instanceof Uint8Array) || bytes.length !== SCREEN_INFO_SIZE) {
      throw new ConfigurationError(`${this.source.name}: boot framebuffer screen_info must be ${SCREEN_INFO_SIZE} bytes`);
    }
    if (bytes[ORIG_VIDEO_IS_VGA] === 0) throw new ConfigurationError(`${this.source.name}: boot framebuffer screen_info has no video type`);
    return bytes;
  }
}
