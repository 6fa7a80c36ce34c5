import type { ByteDevice } from "./byte-registers.js";

export const DEBUG_EXIT_PORT = 0x501;

/** Test-guest exit: a byte written to port 0x501 ends the VM with that byte as its exit status. */
export class DebugExit implements ByteDevice {
  constructor(private readonly onExit: (status: number) => void) {}
  readByte(): number {
    return 0xff;
  }
  writeByte(offset: number, value: number): void {
    if (offset === 0) this.onExit(value & 0xff);
  }
}

/** Port 0x80 (POST codes, and Linux's I/O delay): writes are accepted and ignored. */
export class PostCodePort implements ByteDevice {
  /** The last POST code written, for diagnostics. */
  last = 0;
  readByte(): number {
    return this.last;
  }
  writeByte(_offset: number, value: number): void {
    this.last = value;
  }
}
