import { ConfigurationError, SCREEN_INFO_SIZE, type BootFramebuffer, type ScreenInfoProvider } from "@vmm/core";

/** Offset of orig_video_isVGA in struct screen_info (0 = no display described). */
const ORIG_VIDEO_IS_VGA = 0x0f;

/**
 * The machine's `BootFramebuffer` (core's contract, registered under `Tokens.BootFramebuffer`): holds the one
 * display device's screen_info provider, and the bzImage loader places what it returns at offset 0 of
 * boot_params.
 */
export class BootFramebufferSlot implements BootFramebuffer {
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
