import type { SizedBar } from "./bars.js";
import { MSI_ID, MSIX_ID, type FoundCapability } from "./capabilities.js";
import type { ConfigProbe } from "./probe.js";
import { hex, type CheckList } from "./report.js";

const MSIX_ENTRY = 16;

/** Writes `value`, reads back, restores; returns what was read. */
const readBack = (probe: ConfigProbe, offset: number, size: 1 | 2 | 4, value: number) => probe.probe(offset, size, value);

/** Where an MSI-X structure lies: its BAR (BIR) and offset, and what is wrong with its placement. */
function placement(what: string, register: number, length: number, bars: ReadonlyMap<number, SizedBar>) {
  const bir = register & 0x7;
  const offset = (register & ~0x7) >>> 0;
  const problems: string[] = [];
  const bar = bars.get(bir);
  if (bir > 5) problems.push(`the ${what} BIR is ${bir} (6 and 7 are reserved)`);
  else if (!bar) problems.push(`the ${what} is in BAR${bir}, which is not an implemented BAR`);
  else if (bar.kind === "io") problems.push(`the ${what} is in BAR${bir}, an I/O BAR (it must be a memory BAR)`);
  else if (offset + length > bar.size) {
    problems.push(`the ${what} (${hex(offset)}+${hex(length)}) runs past the end of BAR${bir} (${bar.size} bytes)`);
  }
  return { bir, offset, length, problems };
}

/**
 * MSI-X: the table (vectors * 16 bytes) and the PBA inside implemented memory BARs, not overlapping each other
 * (both offsets are 8-byte aligned by their encoding), the table size and both location registers read-only, and
 * every table entry masked after reset as read through the BAR.
 */
function checkMsix(probe: ConfigProbe, cap: FoundCapability, bars: ReadonlyMap<number, SizedBar>, checks: CheckList): void {
  const at = cap.offset;
  const control = probe.read(at + 2, 2);
  const vectors = (control & 0x7ff) + 1;
  const table = placement("table", probe.read(at + 4, 4), vectors * MSIX_ENTRY, bars);
  const pba = placement("PBA", probe.read(at + 8, 4), Math.ceil(vectors / 64) * 8, bars);
  const problems = [...table.problems, ...pba.problems];
  if (table.bir === pba.bir && table.offset < pba.offset + pba.length && pba.offset < table.offset + table.length) {
    problems.push(`the table (${hex(table.offset)}+${hex(table.length)}) and the PBA (${hex(pba.offset)}+${hex(pba.length)}) overlap in BAR${table.bir}`);
  }
  const size = readBack(probe, at + 2, 2, 0x07ff);
  if ((size.after & 0x7ff) !== (control & 0x7ff)) problems.push(`the table size field is not read-only (${vectors} vectors became ${(size.after & 0x7ff) + 1})`);
  for (const [name, offset] of [["table", at + 4], ["PBA", at + 8]] as const) {
    for (const value of [0xffff_ffff, 0]) {
      const r = readBack(probe, offset, 4, value);
      if (r.after !== r.before) problems.push(`the ${name} offset/BIR register is not read-only (writing ${hex(value, 8)} changed ${hex(r.before, 8)} to ${hex(r.after, 8)})`);
    }
  }
  if (table.problems.length === 0) {
    const window = probe.bus.windows(probe.device).find((w) => w.index === table.bir);
    if (window) {
      const unmasked: number[] = [];
      for (let v = 0; v < vectors; v++) {
        if ((probe.mmio.read(window.address + table.offset + v * MSIX_ENTRY + 12, 4) & 1) === 0) unmasked.push(v);
      }
      if (unmasked.length) problems.push(`table entries ${unmasked.slice(0, 8).join(", ")}${unmasked.length > 8 ? ", ..." : ""} read unmasked after reset (vector control bit 0 must be 1)`);
    }
  }
  checks.recordAll(`MSI-X capability ${hex(at)} (${vectors} vectors)`, at, problems);
}

/**
 * MSI: message control's capability bits (multiple message capable, 64-bit, per-vector masking) valid and
 * read-only, the fields at the offsets those bits imply: a dword-aligned writable address, the upper address for
 * 64-bit, writable data, and mask bits for exactly the vectors it is capable of.
 */
function checkMsi(probe: ConfigProbe, cap: FoundCapability, checks: CheckList): void {
  const at = cap.offset;
  const control = probe.read(at + 2, 2);
  const capable = (control >>> 1) & 0x7;
  const enabled = (control >>> 4) & 0x7;
  const is64 = (control & 0x80) !== 0;
  const maskable = (control & 0x100) !== 0;
  const problems: string[] = [];
  if (capable > 5) problems.push(`multiple message capable is ${capable} (above 5, 32 vectors, is reserved)`);
  if (enabled > capable) problems.push(`multiple message enable (${enabled}) is above multiple message capable (${capable}) after reset`);
  const readOnly = 0x18e;
  for (const value of [0x0000, readOnly]) {
    const r = readBack(probe, at + 2, 2, value);
    if ((r.after & readOnly) !== (control & readOnly)) {
      problems.push(`message control's capability bits (1-3, 7, 8) are not read-only (writing ${hex(value, 4)} changed ${hex(control, 4)} to ${hex(r.after, 4)})`);
      break;
    }
  }
  const address = readBack(probe, at + 4, 4, 0xffff_ffff);
  if (address.after !== 0xffff_fffc) problems.push(`the message address at ${hex(at + 4)} reads ${hex(address.after, 8)} after writing all-ones (bits 31:2 writable, 1:0 reading 0)`);
  if (is64) {
    const upper = readBack(probe, at + 8, 4, 0xffff_ffff);
    if (upper.after !== 0xffff_ffff) problems.push(`the upper message address at ${hex(at + 8)} reads ${hex(upper.after, 8)} after writing all-ones (64-bit capable)`);
  }
  const dataAt = at + (is64 ? 0x0c : 0x08);
  const data = readBack(probe, dataAt, 2, 0xa5c3);
  if (data.after !== 0xa5c3) problems.push(`the message data at ${hex(dataAt)} reads ${hex(data.after, 4)} after writing 0xa5c3`);
  if (maskable && capable <= 5) {
    const maskAt = at + (is64 ? 0x10 : 0x0c);
    const want = capable === 5 ? 0xffff_ffff : (1 << (1 << capable)) - 1;
    const mask = readBack(probe, maskAt, 4, 0xffff_ffff);
    if (mask.after !== want) problems.push(`the mask bits at ${hex(maskAt)} read ${hex(mask.after, 8)} after writing all-ones (want ${hex(want, 8)}: one bit per capable vector)`);
    const pending = readBack(probe, maskAt + 4, 4, 0xffff_ffff);
    if (pending.after !== pending.before) problems.push(`the pending bits at ${hex(maskAt + 4)} are not read-only`);
  }
  checks.recordAll(`MSI capability ${hex(at)} (${1 << Math.min(capable, 5)} vectors${is64 ? ", 64-bit" : ""}${maskable ? ", maskable" : ""})`, at, problems);
}

/** MSI and MSI-X capabilities, at most one of each. */
export function checkMessageSignalled(probe: ConfigProbe, caps: readonly FoundCapability[], bars: ReadonlyMap<number, SizedBar>, checks: CheckList): void {
  for (const [id, name] of [[MSI_ID, "MSI"], [MSIX_ID, "MSI-X"]] as const) {
    const all = caps.filter((c) => c.id === id);
    if (all.length > 1) checks.record(`${name} capability`, all[1]!.offset, `the list has ${all.length} ${name} capabilities (${all.map((c) => hex(c.offset)).join(", ")}); a function has at most one`);
  }
  for (const cap of caps) {
    if (cap.id === MSIX_ID) checkMsix(probe, cap, bars, checks);
    if (cap.id === MSI_ID) checkMsi(probe, cap, checks);
  }
}
