import type { IoHandler, SmallAccessSize } from "@vmm/core";

/** A device whose registers are all one byte wide. */
export interface ByteDevice {
  readByte(offset: number): number;
  writeByte(offset: number, value: number): void;
}

/**
 * Adapts a byte-register device to an IoHandler: a 2- or 4-byte access becomes consecutive byte accesses
 * (low byte first), as on an 8-bit ISA bus.
 */
export function byteHandler(device: ByteDevice): IoHandler {
  return {
    read(offset: number, size: SmallAccessSize): number {
      let v = 0;
      for (let i = 0; i < size; i++) v |= device.readByte(offset + i) << (8 * i);
      return v >>> 0;
    },
    write(offset: number, size: SmallAccessSize, value: number): void {
      for (let i = 0; i < size; i++) device.writeByte(offset + i, (value >>> (8 * i)) & 0xff);
    },
  };
}

/** One entry of a declarative byte-register table. */
export interface ByteRegister<S> {
  readonly name: string;
  readonly read?: (state: S) => number;
  readonly write?: (state: S, value: number) => void;
}
