// The vfio-user wire format (QEMU docs/interop/vfio-user.rst): a 16-byte header before every message, command
// numbers, and the payloads that are vfio-user's own (the rest are linux/vfio.h structures, see ../uapi).
import { CStruct } from "../uapi/struct.js";

export const VfioUserCommand = {
  VERSION: 1,
  DMA_MAP: 2,
  DMA_UNMAP: 3,
  DEVICE_GET_INFO: 4,
  DEVICE_GET_REGION_INFO: 5,
  DEVICE_GET_REGION_IO_FDS: 6,
  DEVICE_GET_IRQ_INFO: 7,
  DEVICE_SET_IRQS: 8,
  REGION_READ: 9,
  REGION_WRITE: 10,
  DMA_READ: 11,
  DMA_WRITE: 12,
  DEVICE_RESET: 13,
  REGION_WRITE_MULTI: 15,
  DEVICE_FEATURE: 16,
  MIG_DATA_READ: 17,
  MIG_DATA_WRITE: 18,
} as const;

const commandNames = new Map<number, string>(Object.entries(VfioUserCommand).map(([name, value]) => [value, `VFIO_USER_${name}`]));

/** "VFIO_USER_REGION_READ", or "command 99" for a number the spec does not define. */
export function commandName(command: number): string {
  return commandNames.get(command) ?? `command ${command}`;
}

export const VfioUserHeader = new CStruct("vfio_user_header", { msg_id: "u16", command: "u16", msg_size: "u32", flags: "u32", error_no: "u32" });
export const HEADER_SIZE = VfioUserHeader.size;

/** Header flags: bits 0-3 the message type, then No_reply and Error. */
export const VfioUserFlags = { TYPE_MASK: 0xf, TYPE_COMMAND: 0, TYPE_REPLY: 1, NO_REPLY: 1 << 4, ERROR: 1 << 5 } as const;

/** VFIO_USER_VERSION's fixed part; UTF-8 JSON with a terminating NUL follows. */
export const VfioUserVersion = new CStruct("vfio_user_version", { major: "u16", minor: "u16" });

/** VFIO_USER_DMA_MAP's payload; the memory's fd, when it has one, travels as SCM_RIGHTS. */
export const VfioUserDmaMap = new CStruct("vfio_user_dma_map", { argsz: "u32", flags: "u32", offset: "u64", address: "u64", size: "u64" });
export const VfioUserDmaMapFlags = { READ: 1 << 0, WRITE: 1 << 1 } as const;

export const VfioUserDmaUnmap = new CStruct("vfio_user_dma_unmap", { argsz: "u32", flags: "u32", address: "u64", size: "u64" });

/** REGION_READ/WRITE's fixed part (request and reply); data follows for a read reply and a write request. */
export const VfioUserRegionAccess = new CStruct("vfio_user_region_access", { offset: "u64", region: "u32", count: "u32" });

/** DMA_READ/WRITE's fixed part (request and reply); data follows for a read reply and a write request. */
export const VfioUserDmaAccess = new CStruct("vfio_user_dma_access", { address: "u64", count: "u64" });

export interface VfioUserHeaderFields {
  readonly id: number;
  readonly command: number;
  readonly flags: number;
  readonly errorNo?: number;
}

/** One message: the header (msg_size from the payload) followed by `payload`. */
export function encodeMessage(header: VfioUserHeaderFields, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  const bytes = new Uint8Array(HEADER_SIZE + payload.length);
  VfioUserHeader.encodeInto(
    { msg_id: header.id, command: header.command, msg_size: bytes.length, flags: header.flags, error_no: header.errorNo ?? 0 },
    bytes,
    0,
  );
  bytes.set(payload, HEADER_SIZE);
  return bytes;
}

/** Concatenates payload parts (a fixed structure and the data after it). */
export function concat(...parts: readonly Uint8Array[]): Uint8Array {
  const bytes = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    bytes.set(part, offset);
    offset += part.length;
  }
  return bytes;
}
