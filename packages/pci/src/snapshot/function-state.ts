// The saved state of a PciFunction (layout version 1): what the function keeps itself, as JSON-safe data, and
// its checked decoding. Nothing here touches a function; `PciFunction` gathers and applies the parts.
import { decodeBytes, encodeBytes, SnapshotError, stateData, stateInt, type DeviceState, type StateValue } from "@vmm/core";
import type { ExpressDeviceType } from "../capabilities/express.js";
import { Reg } from "../config/header.js";
import type { MaskedBytes } from "../config/masked-bytes.js";

export const FUNCTION_STATE_VERSION = 1;

/** What a function's state holds, decoded. */
export interface FunctionStateParts {
  /** The register file (4 KiB) and each capability body, in offset order. */
  readonly file: Uint8Array;
  readonly overlays: readonly Uint8Array[];
  readonly express: ExpressDeviceType | undefined;
  /** The level the device drives on INTx. */
  readonly intx: boolean;
  /** MSI's private pending bits (no pending register), when the function has MSI. */
  readonly msiHeld: number | undefined;
  readonly msix: { readonly table: Uint8Array; readonly pba: Uint8Array } | undefined;
  /** The subclass's own state (`saveDeviceState`). */
  readonly device: DeviceState | undefined;
}

/** What the restoring function looks like: the sizes its state must have. */
export interface FunctionLayout {
  readonly name: string;
  readonly file: MaskedBytes;
  readonly overlayLengths: readonly number[];
  readonly express: ExpressDeviceType | undefined;
  readonly msi: boolean;
  readonly msix: { readonly tableSize: number; readonly pbaSize: number } | undefined;
}

const EXPRESS_TYPES: readonly ExpressDeviceType[] = ["endpoint", "legacy-endpoint", "rc-integrated", "root-port"];

export function encodeFunctionState(p: FunctionStateParts): DeviceState {
  return {
    version: FUNCTION_STATE_VERSION,
    data: {
      config: encodeBytes(p.file),
      overlays: p.overlays.map(encodeBytes),
      express: p.express ?? null,
      intx: p.intx,
      msi: p.msiHeld === undefined ? null : { held: p.msiHeld },
      msix: p.msix ? { table: encodeBytes(p.msix.table), pba: encodeBytes(p.msix.pba) } : null,
      device: p.device ? { version: p.device.version, data: p.device.data } : null,
    },
  };
}

/**
 * Decodes and checks a function's state against the function restoring it: sizes, and the read-only header bytes
 * that say what the function is (IDs, class, header type, pin), so a state saved from another kind of function
 * is refused. Throws SnapshotError naming the function; never anything else.
 */
export function decodeFunctionState(state: DeviceState, layout: FunctionLayout): FunctionStateParts {
  const what = layout.name;
  const data = stateData(state, what, FUNCTION_STATE_VERSION);
  const file = decodeBytes(data.config, `${what}: config space`, layout.file.size);
  checkIdentity(what, file, layout.file);
  const overlays = data.overlays;
  if (!Array.isArray(overlays) || overlays.length !== layout.overlayLengths.length) {
    throw new SnapshotError(`${what}: the saved state has ${Array.isArray(overlays) ? overlays.length : "no"} capability bodies, this function ${layout.overlayLengths.length}`);
  }
  const bodies = overlays.map((o: StateValue, i: number) => decodeBytes(o, `${what}: capability body ${i}`, layout.overlayLengths[i]));
  const express = data.express ?? undefined;
  if (express !== layout.express) {
    throw new SnapshotError(`${what}: saved as ${describeExpress(express)}, this function is ${describeExpress(layout.express)}`);
  }
  if (typeof data.intx !== "boolean") throw new SnapshotError(`${what}: intx must be a boolean`);
  const msiHeld = layout.msi ? stateInt(object(data.msi, `${what}: msi`), "held", `${what}: msi`, 0, 0xffff_ffff) : undefined;
  if (!layout.msi && data.msi !== null) throw new SnapshotError(`${what}: the saved state has MSI, this function has none`);
  let msix: FunctionStateParts["msix"];
  if (layout.msix) {
    const m = object(data.msix, `${what}: msix`);
    msix = {
      table: decodeBytes(m.table, `${what}: MSI-X table`, layout.msix.tableSize),
      pba: decodeBytes(m.pba, `${what}: MSI-X PBA`, layout.msix.pbaSize),
    };
  } else if (data.msix !== null) throw new SnapshotError(`${what}: the saved state has MSI-X, this function has none`);
  let device: DeviceState | undefined;
  if (data.device !== null) {
    const d = object(data.device, `${what}: device state`);
    device = { version: stateInt(d, "version", `${what}: device state`, 0, Number.MAX_SAFE_INTEGER), data: d.data ?? null };
  }
  return { file, overlays: bodies, express: layout.express, intx: data.intx, msiHeld, msix, device };
}

function object(value: StateValue | undefined, what: string): { readonly [key: string]: StateValue } {
  if (!value || typeof value !== "object" || Array.isArray(value)) throw new SnapshotError(`${what}: not an object`);
  return value as { readonly [key: string]: StateValue };
}

function describeExpress(type: StateValue | undefined): string {
  if (type === undefined || type === null) return "conventional PCI";
  return typeof type === "string" && (EXPRESS_TYPES as readonly string[]).includes(type) ? `a PCI Express ${type}` : JSON.stringify(type);
}

/**
 * The header bytes no guest write and no device changes (no writable or write-1-to-clear bit; the status register
 * excluded, whose interrupt bit the device drives) must read as this function's: vendor and device IDs, class,
 * header type, interrupt pin. A mismatch means the state belongs to another kind of function.
 */
function checkIdentity(what: string, saved: Uint8Array, file: MaskedBytes): void {
  for (let at = 0; at < 0x40; at++) {
    if (at === Reg.STATUS || at === Reg.STATUS + 1) continue;
    if (file.writable[at] !== 0 || file.writeOneToClear[at] !== 0) continue;
    if (saved[at] !== file.bytes[at]) {
      throw new SnapshotError(
        `${what}: the saved state is of another function (config byte 0x${at.toString(16)} is 0x${saved[at]!.toString(16)}, here 0x${file.bytes[at]!.toString(16)}; ` +
          `IDs ${hex4(saved, 0)}:${hex4(saved, 2)}, here ${hex4(file.bytes, 0)}:${hex4(file.bytes, 2)})`,
      );
    }
  }
}

const hex4 = (b: Uint8Array, at: number) => (b[at]! | (b[at + 1]! << 8)).toString(16).padStart(4, "0");
