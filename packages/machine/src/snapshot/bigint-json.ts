// KVM state objects carry 64-bit values as bigints; snapshot state is JSON. A bigint is saved as its decimal
// digits followed by "n" ("18446744073709551615n"), and only strings of that form become bigints again.
import { SnapshotError, type StateValue } from "@vmm/core";

const BIGINT = /^[0-9]{1,20}n$/;

/** Plain objects, arrays, numbers and bigints as JSON-safe state (Uint8Arrays are not expected here). */
export function toStateValue(value: unknown, what: string): StateValue {
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "string" || value === null) return value;
  if (Array.isArray(value)) return value.map((v, i) => toStateValue(v, `${what}[${i}]`));
  if (typeof value === "object" && !ArrayBuffer.isView(value)) {
    return Object.fromEntries(Object.entries(value as object).map(([k, v]) => [k, toStateValue(v, `${what}.${k}`)]));
  }
  throw new SnapshotError(`${what}: ${typeof value} cannot be saved`);
}

/** The inverse of toStateValue: "…n" strings become bigints; everything else is returned as it is. */
export function fromStateValue(value: StateValue | undefined, what: string): unknown {
  if (value === undefined) throw new SnapshotError(`${what}: missing`);
  if (typeof value === "string" && BIGINT.test(value)) return BigInt(value.slice(0, -1));
  if (Array.isArray(value)) return value.map((v, i) => fromStateValue(v, `${what}[${i}]`));
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fromStateValue(v, `${what}.${k}`)]));
  return value;
}
