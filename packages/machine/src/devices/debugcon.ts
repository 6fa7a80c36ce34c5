import type { IoHandler } from "@vmm/core";

/** QEMU's debug console port, where SeaBIOS and OVMF write their debug log. */
export const DEBUGCON_PORT = 0x402;
/** What the port reads as, so firmware knows the console is there. */
const READBACK = 0xe9;

/** The debug console: bytes written to port 0x402 go to `output`; reads return 0xE9. */
export function debugconHandler(output: (bytes: Uint8Array) => void): IoHandler {
  return {
    read: () => READBACK,
    write: (_offset, size, value) => {
      const bytes = new Uint8Array(size);
      for (let i = 0; i < size; i++) bytes[i] = (value >>> (8 * i)) & 0xff;
      output(bytes);
    },
  };
}
