// Readers for the fields of saved state data beyond core's stateInt: each throws SnapshotError naming the
// component and the field, so a damaged snapshot is refused with a line that says where.
import { SnapshotError, stateInt, type StateValue } from "@vmm/core";

export type StateObject = { readonly [key: string]: StateValue };

export function stateBool(data: StateObject, key: string, what: string): boolean {
  const v = data[key];
  if (typeof v !== "boolean") throw new SnapshotError(`${what}: ${key} must be true or false, got ${JSON.stringify(v) ?? "nothing"}`);
  return v;
}

/** A list of integers in [min, max] of at most `maxLength` entries (a FIFO's bytes). */
export function stateIntList(data: StateObject, key: string, what: string, min: number, max: number, maxLength: number): number[] {
  const v = data[key];
  if (!Array.isArray(v) || v.length > maxLength) throw new SnapshotError(`${what}: ${key} must be a list of at most ${maxLength} numbers`);
  return v.map((_, i) => stateInt(v as unknown as StateObject, String(i), `${what}: ${key}`, min, max));
}

/** An integer field that may be absent (null), for optional registers. */
export function stateOptionalInt(data: StateObject, key: string, what: string, min: number, max: number): number | undefined {
  return data[key] === null || data[key] === undefined ? undefined : stateInt(data, key, what, min, max);
}

/** A string field (a bigint in decimal, a name). */
export function stateString(data: StateObject, key: string, what: string): string {
  const v = data[key];
  if (typeof v !== "string") throw new SnapshotError(`${what}: ${key} must be a string, got ${JSON.stringify(v) ?? "nothing"}`);
  return v;
}

/** A bigint saved as a decimal string, in [0, 2^bits). */
export function stateBigInt(data: StateObject, key: string, what: string, bits = 64): bigint {
  const s = stateString(data, key, what);
  if (!/^[0-9]{1,20}$/.test(s) || BigInt(s) >= 1n << BigInt(bits)) throw new SnapshotError(`${what}: ${key} must be a ${bits}-bit unsigned number, got ${JSON.stringify(s)}`);
  return BigInt(s);
}

/** A nested object field. */
export function stateObject(data: StateObject, key: string, what: string): StateObject {
  const v = data[key];
  if (!v || typeof v !== "object" || Array.isArray(v)) throw new SnapshotError(`${what}: ${key} must be an object`);
  return v as StateObject;
}
