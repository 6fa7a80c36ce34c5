// Hand-built vfio-user message bytes for the tests, written from the protocol's tables (independently of the
// server's encoders, so a misreading in one is not mirrored in the other).

export const CMD = {
  VERSION: 1,
  DMA_MAP: 2,
  DMA_UNMAP: 3,
  GET_INFO: 4,
  GET_REGION_INFO: 5,
  GET_REGION_IO_FDS: 6,
  GET_IRQ_INFO: 7,
  SET_IRQS: 8,
  REGION_READ: 9,
  REGION_WRITE: 10,
  DMA_READ: 11,
  DMA_WRITE: 12,
  RESET: 13,
} as const;

export const REPLY = 0x1;
export const NO_REPLY = 0x10;
export const ERROR = 0x20;

export const EINVAL = 22;
export const EEXIST = 17;
export const ENOENT = 2;
export const ENOTSUP = 95;
export const ENOSYS = 38;

/** Little-endian fields, written in order. */
export class Bytes {
  private readonly parts: number[] = [];
  u8(v: number): this {
    this.parts.push(v & 0xff);
    return this;
  }
  u16(v: number): this {
    return this.u8(v).u8(v >>> 8);
  }
  u32(v: number): this {
    return this.u16(v & 0xffff).u16(v >>> 16);
  }
  u64(v: number | bigint): this {
    const b = BigInt(v);
    return this.u32(Number(b & 0xffffffffn)).u32(Number((b >> 32n) & 0xffffffffn));
  }
  raw(bytes: Uint8Array | readonly number[]): this {
    this.parts.push(...bytes);
    return this;
  }
  done(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

export function message(id: number, command: number, payload: Uint8Array = new Uint8Array(0), flags = 0): Uint8Array {
  return new Bytes()
    .u16(id)
    .u16(command)
    .u32(16 + payload.length)
    .u32(flags)
    .u32(0)
    .raw(payload)
    .done();
}

export interface Received {
  id: number;
  command: number;
  size: number;
  flags: number;
  error: number;
  payload: Uint8Array;
  fds: number[];
}

export function le(bytes: Uint8Array, offset: number, width: 1 | 2 | 4): number {
  let v = 0;
  for (let i = 0; i < width; i++) v |= bytes[offset + i]! << (8 * i);
  return v >>> 0;
}

export function le64(bytes: Uint8Array, offset: number): bigint {
  return BigInt(le(bytes, offset, 4)) | (BigInt(le(bytes, offset + 4, 4)) << 32n);
}

export function versionPayload(major: number, minor: number, json?: string): Uint8Array {
  const b = new Bytes().u16(major).u16(minor);
  if (json !== undefined) b.raw(new TextEncoder().encode(json)).u8(0);
  return b.done();
}

export function regionInfoRequest(index: number, argsz = 256): Uint8Array {
  return new Bytes().u32(argsz).u32(0).u32(index).u32(0).u64(0).u64(0).done();
}

export function regionReadRequest(region: number, offset: number, count: number): Uint8Array {
  return new Bytes().u64(offset).u32(region).u32(count).done();
}

export function regionWriteRequest(region: number, offset: number, data: Uint8Array): Uint8Array {
  return new Bytes().u64(offset).u32(region).u32(data.length).raw(data).done();
}

export function dword(value: number): Uint8Array {
  return new Bytes().u32(value).done();
}

export function dmaMapRequest(address: number | bigint, size: number | bigint, flags = 3, offset = 0): Uint8Array {
  return new Bytes().u32(32).u32(flags).u64(offset).u64(address).u64(size).done();
}

export function dmaUnmapRequest(address: number | bigint, size: number | bigint, flags = 0): Uint8Array {
  return new Bytes().u32(24).u32(flags).u64(address).u64(size).done();
}

export const IRQ = { INTX: 0, MSI: 1, MSIX: 2 } as const;
export const SET = { NONE: 1, BOOL: 2, EVENTFD: 4, MASK: 8, UNMASK: 16, TRIGGER: 32 } as const;

export function setIrqsRequest(flags: number, index: number, start: number, count: number, bools?: readonly number[]): Uint8Array {
  const b = new Bytes()
    .u32(20 + (bools?.length ?? 0))
    .u32(flags)
    .u32(index)
    .u32(start)
    .u32(count);
  if (bools) b.raw(bools);
  return b.done();
}
