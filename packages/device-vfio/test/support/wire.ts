// Bytes written by hand from the vfio-user spec's tables and linux/vfio.h, independent of the package's encoders:
// little-endian integers of a given width, concatenated.
export type Part = readonly number[] | Uint8Array;

function le(size: number, value: number | bigint): number[] {
  let v = BigInt(value);
  const out: number[] = [];
  for (let i = 0; i < size; i++) {
    out.push(Number(v & 0xffn));
    v >>= 8n;
  }
  return out;
}

export const u8 = (value: number): number[] => le(1, value);
export const u16 = (value: number): number[] => le(2, value);
export const u32 = (value: number | bigint): number[] => le(4, value);
export const u64 = (value: number | bigint): number[] => le(8, value);
export const zeros = (count: number): number[] => new Array<number>(count).fill(0);

export function bytes(...parts: readonly Part[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** A vfio-user message: the 16-byte header (id, command, msg_size, flags, error) and the payload. */
export function message(id: number, command: number, flags: number, payload: Part = [], error = 0): Uint8Array {
  return bytes(u16(id), u16(command), u32(16 + payload.length), u32(flags), u32(error), payload);
}

/** Header flag values from the spec: type 0 command, 1 reply; bit 4 no_reply; bit 5 error. */
export const COMMAND = 0;
export const REPLY = 1;
export const NO_REPLY = 1 << 4;
export const ERROR = 1 << 5;

/** Command numbers from the spec's table. */
export const Cmd = {
  VERSION: 1,
  DMA_MAP: 2,
  DMA_UNMAP: 3,
  DEVICE_GET_INFO: 4,
  DEVICE_GET_REGION_INFO: 5,
  DEVICE_GET_IRQ_INFO: 7,
  DEVICE_SET_IRQS: 8,
  REGION_READ: 9,
  REGION_WRITE: 10,
  DMA_READ: 11,
  DMA_WRITE: 12,
  DEVICE_RESET: 13,
} as const;

/** A reply to the message the peer received last (its id is patched in by the peer). */
export function reply(command: number, payload: Part = []): Uint8Array {
  return message(0, command, REPLY, payload);
}

export function errorReply(command: number, errno: number): Uint8Array {
  return message(0, command, REPLY | ERROR, [], errno);
}

/** VERSION's payload: major, minor, then UTF-8 JSON and its NUL. */
export function versionPayload(major: number, minor: number, json?: string): Uint8Array {
  return bytes(u16(major), u16(minor), json === undefined ? [] : [...new TextEncoder().encode(json), 0]);
}

export const hex = (data: Uint8Array): string => Buffer.from(data).toString("hex");
