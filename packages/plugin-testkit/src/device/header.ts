import type { SmallAccessSize } from "@vmm/core";
import { Reg } from "@vmm/pci";
import { hex, type CheckList } from "./report.js";
import type { ConfigProbe } from "./probe.js";

/** Header registers a guest never changes: writes of all-ones and of zeros must leave them as they were. */
const READ_ONLY: ReadonlyArray<{ name: string; offset: number; size: SmallAccessSize }> = [
  { name: "vendor ID", offset: Reg.VENDOR_ID, size: 2 },
  { name: "device ID", offset: Reg.DEVICE_ID, size: 2 },
  { name: "vendor and device ID (dword)", offset: Reg.VENDOR_ID, size: 4 },
  { name: "revision ID", offset: Reg.REVISION, size: 1 },
  { name: "class code (programming interface)", offset: Reg.CLASS_CODE, size: 1 },
  { name: "class code (subclass, base class)", offset: Reg.CLASS_CODE + 1, size: 2 },
  { name: "header type", offset: Reg.HEADER_TYPE, size: 1 },
  { name: "subsystem vendor ID", offset: Reg.SUBSYSTEM_VENDOR_ID, size: 2 },
  { name: "subsystem ID", offset: Reg.SUBSYSTEM_ID, size: 2 },
  { name: "capabilities pointer", offset: Reg.CAPABILITIES_POINTER, size: 1 },
  { name: "interrupt pin", offset: Reg.INTERRUPT_PIN, size: 1 },
];

const ones = (size: SmallAccessSize) => (size === 4 ? 0xffff_ffff : (1 << (8 * size)) - 1);

/** Vendor ID present, a type 0 header, and the read-only header registers really read-only. */
export function checkHeader(probe: ConfigProbe, checks: CheckList): void {
  const vendor = probe.read(Reg.VENDOR_ID, 2);
  checks.record(
    "vendor ID",
    Reg.VENDOR_ID,
    vendor === 0xffff || vendor === 0 ? `reads ${hex(vendor, 4)}: a guest takes the slot for empty (0xffff) or invalid (0x0000)` : undefined,
  );
  const headerType = probe.read(Reg.HEADER_TYPE, 1) & 0x7f; // bit 7 (multi-function) is the bus's
  checks.record("header type", Reg.HEADER_TYPE, headerType !== 0 ? `layout ${hex(headerType)}: an endpoint has a type 0 header` : undefined);

  for (const reg of READ_ONLY) {
    const problems: string[] = [];
    for (const value of [ones(reg.size), 0]) {
      const { before, after } = probe.probe(reg.offset, reg.size, value);
      if (after !== before) problems.push(`writing ${hex(value, 2 * reg.size)} changed it from ${hex(before, 2 * reg.size)} to ${hex(after, 2 * reg.size)}`);
    }
    checks.recordAll(`read-only ${reg.name}`, reg.offset, problems.length ? [`is read-only, but ${problems.join(" and ")}`] : []);
  }
}
