import { Reg, Status } from "@vmm/pci";
import type { ConfigProbe } from "./probe.js";
import { hex, type CheckList } from "./report.js";

/** A capability found in the standard list. */
export interface FoundCapability {
  readonly id: number;
  readonly offset: number;
  /** Bytes it occupies (from its ID and its own fields; just the 2-byte header where the length is not known). */
  readonly length: number;
}

/** Capability IDs the PCI Code and ID Assignment specification defines (0x09 is vendor-specific). */
const CAPABILITY_NAMES: Readonly<Record<number, string>> = {
  0x01: "power management",
  0x02: "AGP",
  0x03: "VPD",
  0x04: "slot identification",
  0x05: "MSI",
  0x06: "CompactPCI hot swap",
  0x07: "PCI-X",
  0x08: "HyperTransport",
  0x09: "vendor-specific",
  0x0a: "debug port",
  0x0b: "CompactPCI central resource control",
  0x0c: "PCI hot-plug",
  0x0d: "bridge subsystem vendor ID",
  0x0e: "AGP 8x",
  0x0f: "secure device",
  0x10: "PCI Express",
  0x11: "MSI-X",
  0x12: "SATA",
  0x13: "advanced features",
  0x14: "enhanced allocation",
  0x15: "flattening portal bridge",
};

export const MSI_ID = 0x05;
export const MSIX_ID = 0x11;
const VENDOR_ID = 0x09;
const EXPRESS_ID = 0x10;
const FIRST = 0x40;
const LAST = 0xfc;

export const capabilityName = (id: number) => CAPABILITY_NAMES[id] ?? `unknown ID ${hex(id)}`;

/** MSI's length from its message control: 64-bit address and per-vector masking add fields. */
export function msiLength(control: number): number {
  const is64 = (control & 0x80) !== 0;
  const maskable = (control & 0x100) !== 0;
  return (is64 ? 0x0e : 0x0a) + (maskable ? 0x0a : 0);
}

/**
 * The PCI Express capability's length from its flags: version 2 always spans 0x3c bytes; version 1 ends after
 * the registers its device/port type has (link for every function, slot for downstream ports, root for root ports).
 */
function expressLength(flags: number): number {
  if ((flags & 0xf) >= 2) return 0x3c;
  const type = (flags >>> 4) & 0xf;
  if (type === 0x4) return 0x24; // root port
  if (type === 0x6) return 0x1c; // switch downstream port
  return 0x14;
}

function lengthOf(probe: ConfigProbe, id: number, offset: number): number {
  switch (id) {
    case 0x01:
    case 0x03:
    case 0x0d:
    case 0x12:
      return 8;
    case MSI_ID:
      return msiLength(probe.read(offset + 2, 2));
    case VENDOR_ID:
      return Math.max(3, probe.read(offset + 2, 1));
    case EXPRESS_ID:
      return expressLength(probe.read(offset + 2, 2));
    case MSIX_ID:
      return 12;
    case 0x13:
      return 6;
    default:
      return 2;
  }
}

/**
 * Walks the standard capability list: pointers inside 0x40..0xfc and dword aligned, no loops, known IDs,
 * capabilities that do not overlap each other or run past 0x100, and the status register's capability-list bit
 * set exactly when a list exists. Returns the capabilities found.
 */
export function checkCapabilities(probe: ConfigProbe, checks: CheckList): FoundCapability[] {
  const found: FoundCapability[] = [];
  const status = probe.read(Reg.STATUS, 2);
  const first = probe.read(Reg.CAPABILITIES_POINTER, 1);
  const listed = (status & Status.CAPABILITIES_LIST) !== 0;
  checks.record(
    "status capability-list bit",
    Reg.STATUS,
    listed && first === 0
      ? "is set but the capabilities pointer is 0"
      : !listed && first !== 0
        ? `is clear but the capabilities pointer is ${hex(first)}: a guest ignores the list`
        : undefined,
  );

  const seen = new Set<number>();
  let pointer = first;
  let from = Reg.CAPABILITIES_POINTER;
  while (pointer !== 0) {
    const problem =
      pointer < FIRST || pointer > LAST
        ? `points to ${hex(pointer)}, outside ${hex(FIRST)}..${hex(LAST)}`
        : pointer & 3
          ? `points to ${hex(pointer)}, which is not dword aligned`
          : seen.has(pointer)
            ? `points back to ${hex(pointer)}: the list loops`
            : undefined;
    if (problem) {
      checks.record("capability list", from, `the next pointer at ${hex(from)} ${problem}`);
      break;
    }
    seen.add(pointer);
    const id = probe.read(pointer, 1);
    const capability = { id, offset: pointer, length: lengthOf(probe, id, pointer) };
    found.push(capability);
    from = pointer + 1;
    pointer = probe.read(pointer + 1, 1);
  }

  for (const cap of found) {
    const problems: string[] = [];
    if (!CAPABILITY_NAMES[cap.id]) problems.push(`ID ${hex(cap.id)} is neither a defined capability nor vendor-specific (0x09)`);
    if (cap.offset + cap.length > 0x100) problems.push(`its ${cap.length} bytes run past the end of the standard config space`);
    for (const other of found) {
      if (other.offset > cap.offset && other.offset < cap.offset + cap.length) {
        problems.push(`its ${cap.length} bytes overlap the ${capabilityName(other.id)} capability at ${hex(other.offset)}`);
      }
    }
    checks.recordAll(`capability ${hex(cap.offset)} (${capabilityName(cap.id)})`, cap.offset, problems);
  }

  const hasExpress = found.some((c) => c.id === EXPRESS_ID);
  if (probe.device.express && !hasExpress) checks.record("PCI Express capability", Reg.CAPABILITIES_POINTER, "device.express is true but the list has no PCI Express capability (0x10)");
  if (!probe.device.express && hasExpress) {
    const at = found.find((c) => c.id === EXPRESS_ID)!.offset;
    checks.record("PCI Express capability", at, "the list has a PCI Express capability but device.express is not true (the bus then serves only 256 bytes)");
  }
  return found;
}

/** PCI Express functions: the extended list from 0x100, with valid next pointers and no loops. */
export function checkExtendedCapabilities(probe: ConfigProbe, checks: CheckList): void {
  if (!probe.device.express) return;
  const problems: string[] = [];
  const seen = new Set<number>();
  let offset = 0x100;
  let header = probe.read(offset, 4);
  if (header === 0xffff_ffff) problems.push(`${hex(offset, 3)} reads all-ones; a PCI Express function without extended capabilities reads 0 there`);
  while (header !== 0 && header !== 0xffff_ffff) {
    seen.add(offset);
    const id = header & 0xffff;
    const version = (header >>> 16) & 0xf;
    const next = header >>> 20;
    if (id !== 0 && version === 0) problems.push(`the capability at ${hex(offset, 3)} (ID ${hex(id, 4)}) has version 0`);
    if (next === 0) break;
    if (next < 0x100 || next & 3) {
      problems.push(`the next pointer of ${hex(offset, 3)} is ${hex(next, 3)}: it must be 0 or a dword-aligned offset from 0x100 on`);
      break;
    }
    if (seen.has(next)) {
      problems.push(`the next pointer of ${hex(offset, 3)} points back to ${hex(next, 3)}: the list loops`);
      break;
    }
    offset = next;
    header = probe.read(offset, 4);
  }
  checks.recordAll("extended capability list", 0x100, problems);
}
