// A C structure described by its fields, laid out as the C compiler lays it out on Linux x86-64 and arm64
// (natural alignment, trailing padding to the largest member's alignment). linux/vfio.h's structures are written
// once as such descriptions; offsets, sizes, encoders and decoders all come from them, and the layout table lets a
// compiled test compare every offset with the system header.
import { VfioDecodeError } from "./errors.js";

/**
 * `u64` holds sizes, offsets and addresses and decodes to a number (refused above 2^53, which no real size
 * reaches); `u64big` holds bitmaps and user addresses and decodes to a bigint.
 */
export type ScalarType = "u8" | "u16" | "u32" | "s32" | "u64" | "u64big";

export type FieldType = ScalarType | CStruct<any>;
export type StructFields = Readonly<Record<string, FieldType>>;

type FieldValue<T> = T extends "u64big" ? bigint : T extends CStruct<infer F> ? StructValue<F> : number;
export type StructValue<F extends StructFields> = { [K in keyof F]: FieldValue<F[K]> };

export interface FieldLayout {
  readonly name: string;
  readonly offset: number;
  /** sizeof the member; 0 for a flexible array member (which C cannot take sizeof). */
  readonly size: number;
  /** A flexible array member (`areas[]`): `offset` is offsetof, elements follow the fixed part. */
  readonly flexible?: true;
}

export interface StructLayout {
  /** The C name, without `struct`. */
  readonly struct: string;
  /** sizeof(struct NAME). */
  readonly size: number;
  readonly fields: readonly FieldLayout[];
}

const SCALARS: Readonly<Record<ScalarType, { size: number; align: number }>> = {
  u8: { size: 1, align: 1 },
  u16: { size: 2, align: 2 },
  u32: { size: 4, align: 4 },
  s32: { size: 4, align: 4 },
  u64: { size: 8, align: 8 },
  u64big: { size: 8, align: 8 },
};

const U64_LIMIT = 1n << 64n;

function sizeAndAlign(type: FieldType): { size: number; align: number } {
  return typeof type === "string" ? SCALARS[type] : { size: type.size, align: type.align };
}

const alignUp = (value: number, align: number) => Math.ceil(value / align) * align;

/** Bytes seen as little-endian fields (both architectures this VMM runs on are little-endian). */
export function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export class CStruct<F extends StructFields> {
  /** sizeof, including trailing padding; excludes the flexible array's elements. */
  readonly size: number;
  readonly align: number;
  readonly offsets: { readonly [K in keyof F]: number };
  /** The flexible array member's offset (offsetof), when the structure ends with one. */
  readonly flexibleOffset?: number;

  constructor(
    readonly name: string,
    readonly fields: F,
    readonly flexible?: { readonly name: string; readonly element: FieldType },
  ) {
    let offset = 0;
    let align = 1;
    const offsets: Record<string, number> = {};
    for (const [field, type] of Object.entries(fields)) {
      const layout = sizeAndAlign(type);
      offset = alignUp(offset, layout.align);
      offsets[field] = offset;
      offset += layout.size;
      align = Math.max(align, layout.align);
    }
    if (flexible) {
      const element = sizeAndAlign(flexible.element);
      offset = alignUp(offset, element.align);
      this.flexibleOffset = offset;
      align = Math.max(align, element.align);
    }
    this.align = align;
    this.size = alignUp(offset, align);
    this.offsets = offsets as { [K in keyof F]: number };
  }

  /** Where `field` ends (the kernel's offsetofend: the minimum argsz that includes it). */
  endOf(field: keyof F & string): number {
    return this.offsets[field] + sizeAndAlign(this.fields[field]!).size;
  }

  /** Decodes the structure at `at`; refuses bytes that end before it does. */
  decode(bytes: Uint8Array, at = 0): StructValue<F> {
    if (!Number.isInteger(at) || at < 0 || at + this.size > bytes.length) {
      throw new VfioDecodeError(`${this.name} needs ${this.size} bytes at offset ${at}, only ${Math.max(0, bytes.length - at)} are there`);
    }
    const view = viewOf(bytes);
    const value: Record<string, unknown> = {};
    for (const [field, type] of Object.entries(this.fields)) {
      const offset = at + this.offsets[field as keyof F];
      value[field] = typeof type === "string" ? this.readScalar(view, offset, type, field) : type.decode(bytes, offset);
    }
    return value as StructValue<F>;
  }

  /** A new buffer of `size` bytes (at least sizeof) holding `value`, zero elsewhere. */
  encode(value: StructValue<F>, size = this.size): Uint8Array {
    if (!Number.isInteger(size) || size < this.size) throw new RangeError(`${this.name} needs at least ${this.size} bytes, not ${size}`);
    const bytes = new Uint8Array(size);
    this.encodeInto(value, bytes, 0);
    return bytes;
  }

  encodeInto(value: StructValue<F>, bytes: Uint8Array, at: number): void {
    if (at < 0 || at + this.size > bytes.length) throw new RangeError(`${this.name} does not fit at offset ${at} of ${bytes.length} bytes`);
    const view = viewOf(bytes);
    for (const [field, type] of Object.entries(this.fields)) {
      const offset = at + this.offsets[field as keyof F];
      const fieldValue = (value as Record<string, unknown>)[field];
      if (typeof type !== "string") type.encodeInto(fieldValue as StructValue<any>, bytes, offset);
      else this.writeScalar(view, offset, type, field, fieldValue);
    }
  }

  layout(): StructLayout {
    const fields: FieldLayout[] = Object.entries(this.fields).map(([name, type]) => ({
      name,
      offset: this.offsets[name as keyof F],
      size: sizeAndAlign(type).size,
    }));
    if (this.flexible) fields.push({ name: this.flexible.name, offset: this.flexibleOffset!, size: 0, flexible: true });
    return { struct: this.name, size: this.size, fields };
  }

  private readScalar(view: DataView, offset: number, type: ScalarType, field: string): number | bigint {
    switch (type) {
      case "u8":
        return view.getUint8(offset);
      case "u16":
        return view.getUint16(offset, true);
      case "u32":
        return view.getUint32(offset, true);
      case "s32":
        return view.getInt32(offset, true);
      case "u64big":
        return view.getBigUint64(offset, true);
      case "u64": {
        const value = view.getBigUint64(offset, true);
        if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
          throw new VfioDecodeError(`${this.name}.${field} is 0x${value.toString(16)}, beyond 2^53 (no real size or offset is)`);
        }
        return Number(value);
      }
    }
  }

  private writeScalar(view: DataView, offset: number, type: ScalarType, field: string, value: unknown): void {
    const where = `${this.name}.${field}`;
    if (type === "u64big") {
      if (typeof value !== "bigint" || value < 0n || value >= U64_LIMIT) throw new RangeError(`${where} must be a bigint from 0 to 2^64-1, not ${String(value)}`);
      view.setBigUint64(offset, value, true);
      return;
    }
    if (typeof value !== "number" || !Number.isInteger(value)) throw new RangeError(`${where} must be an integer, not ${String(value)}`);
    const [min, max] = type === "s32" ? [-(2 ** 31), 2 ** 31 - 1] : type === "u64" ? [0, Number.MAX_SAFE_INTEGER] : [0, 2 ** (8 * SCALARS[type].size) - 1];
    if (value < min || value > max) throw new RangeError(`${where} must be from ${min} to ${max}, not ${value}`);
    switch (type) {
      case "u8":
        view.setUint8(offset, value);
        break;
      case "u16":
        view.setUint16(offset, value, true);
        break;
      case "u32":
        view.setUint32(offset, value, true);
        break;
      case "s32":
        view.setInt32(offset, value, true);
        break;
      case "u64":
        view.setBigUint64(offset, BigInt(value), true);
        break;
    }
  }
}
