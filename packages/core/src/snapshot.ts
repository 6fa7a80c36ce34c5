// The state contract of snapshots (`vmm snapshot`, `vmm run --restore`): every device, built-in or plugin, saves
// its state as versioned, JSON-safe data and restores it into a freshly assembled copy of itself.
import { VmmError } from "./errors.js";

/** A JSON value: what a device's state may contain (bytes go through `encodeBytes`). */
export type StateValue = null | boolean | number | string | readonly StateValue[] | { readonly [key: string]: StateValue };

/** One component's saved state: the layout version its `restoreState` checks, and the data. */
export interface DeviceState {
  readonly version: number;
  readonly data: StateValue;
}

/**
 * Something whose state a snapshot carries. `saveState` is called with the vCPUs paused (after `quiesce`);
 * `restoreState` on a copy built from the same configuration, attached where the original was, before the machine
 * runs: it must bring host-side plumbing (BAR windows, MSI routes, ioeventfds, backends) in line with the state.
 * It throws SnapshotError for a version it does not know or data it cannot use, and never trusts the data further.
 */
export interface Snapshottable {
  saveState(): DeviceState;
  restoreState(state: DeviceState): void;
  /**
   * Completes work in flight (I/O submitted to the host, completions not yet published to the guest) so that
   * guest memory and `saveState` agree; called with the vCPUs paused. Work the guest has not yet made available
   * stays for after the restore.
   */
  quiesce?(): Promise<void>;
}

/** A snapshot cannot be taken or restored: the message names the component and why. */
export class SnapshotError extends VmmError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("ESNAPSHOT", message, options);
  }
}

/** Bytes as a string for state data (base64). */
export function encodeBytes(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

/** Decodes `encodeBytes` output; `length`, when given, must match. Throws SnapshotError naming `what`. */
export function decodeBytes(value: StateValue | undefined, what: string, length?: number): Uint8Array {
  if (typeof value !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) throw new SnapshotError(`${what}: not base64 bytes`);
  const bytes = new Uint8Array(Buffer.from(value, "base64"));
  if (length !== undefined && bytes.length !== length) throw new SnapshotError(`${what}: ${bytes.length} bytes, expected ${length}`);
  return bytes;
}

/**
 * Reads a state's data as an object after checking its version, for `restoreState`: `what` names the component
 * in errors ("virtio-blk0").
 */
export function stateData(state: DeviceState | undefined, what: string, version: number): { readonly [key: string]: StateValue } {
  if (!state || typeof state !== "object") throw new SnapshotError(`${what}: no saved state`);
  if (state.version !== version) throw new SnapshotError(`${what}: saved state version ${String(state.version)}, this build reads version ${version}`);
  const data = state.data;
  if (!data || typeof data !== "object" || Array.isArray(data)) throw new SnapshotError(`${what}: saved state is not an object`);
  return data as { readonly [key: string]: StateValue };
}

/** A number field of state data, an integer in [min, max]; throws SnapshotError naming `what.key`. */
export function stateInt(data: { readonly [key: string]: StateValue }, key: string, what: string, min: number, max: number): number {
  const v = data[key];
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw new SnapshotError(`${what}: ${key} must be an integer in [${min}, ${max}], got ${JSON.stringify(v) ?? "nothing"}`);
  }
  return v;
}
