import { VfioDecodeError } from "./errors.js";
import type { CStruct, StructFields, StructValue } from "./struct.js";

/**
 * Decodes an argsz-led info structure from `bytes` that may be shorter than sizeof (a vfio-user device info reply
 * is 16 bytes, vfio_device_info is 20): at least `minimum` bytes (the kernel's minsz) must be there and argsz must
 * reach them; the members beyond the bytes read as zero.
 */
export function decodeInfo<F extends StructFields & { argsz: "u32" }>(struct: CStruct<F>, bytes: Uint8Array, minimum: number, what: string): StructValue<F> {
  if (bytes.length < minimum) throw new VfioDecodeError(`${what}: ${bytes.length} bytes, ${struct.name} needs at least ${minimum}`);
  let padded = bytes;
  if (bytes.length < struct.size) {
    padded = new Uint8Array(struct.size);
    padded.set(bytes);
  }
  const value = struct.decode(padded, 0);
  if ((value.argsz as number) < minimum) throw new VfioDecodeError(`${what}: argsz ${value.argsz as number} is smaller than ${struct.name}'s ${minimum} bytes`);
  return value;
}
