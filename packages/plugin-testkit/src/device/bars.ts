import type { BarKind, PciBarDescriptor } from "@vmm/core";
import { Command, Reg } from "@vmm/pci";
import type { ConfigProbe } from "./probe.js";
import { hex, type CheckList } from "./report.js";

/** A BAR as sizing found it in config space. */
export interface SizedBar {
  readonly index: number;
  readonly kind: BarKind;
  /** Infinity when the BAR is implemented but its mask does not decode to a size (already a failed check). */
  readonly size: number;
  readonly prefetchable: boolean;
}

const ALL_ONES = 0xffff_ffff;
const ROM_ADDRESS_MASK = 0xffff_f800;
const ROM_RESERVED = 0x7fe;
const barOffset = (index: number) => Reg.BAR0 + 4 * index;
const kindText = (kind: BarKind, size: number | bigint) =>
  `${kind === "io" ? "an I/O" : kind === "mem32" ? "a 32-bit memory" : "a 64-bit memory"} BAR of ${size} bytes`;

/**
 * The size a sizing read-back decodes to, when its address bits are a contiguous run of ones from the top down
 * to the size (what guests assume: size = ~mask + 1); undefined for any other pattern. `width` is 32 or 64.
 */
function decodeSize(mask: bigint, width: 32 | 64): bigint | undefined {
  const all = (1n << BigInt(width)) - 1n;
  const low = ~mask & all;
  if ((low & (low + 1n)) !== 0n) return undefined;
  return low + 1n;
}

/** Writes `value` to a BAR dword, then zeros, reads both back and puts the original back. */
function sizeDword(probe: ConfigProbe, offset: number, value = ALL_ONES) {
  const original = probe.read(offset, 4);
  probe.write(offset, 4, value);
  const ones = probe.read(offset, 4);
  probe.write(offset, 4, 0);
  const zeros = probe.read(offset, 4);
  probe.write(offset, 4, original);
  const restored = probe.read(offset, 4);
  return { original, ones, zeros, restored };
}

/** One implemented BAR register sized: its problems, and what it is when it can be decoded. */
function sizeBar(probe: ConfigProbe, index: number): { problems: string[]; bar?: SizedBar; pair?: boolean; kind?: BarKind } {
  const offset = barOffset(index);
  const low = sizeDword(probe, offset);
  const problems: string[] = [];
  const io = (low.original & 1) === 1;
  const typeMask = io ? 0x3 : 0xf;
  if ((low.ones & typeMask) !== (low.original & typeMask) || (low.zeros & typeMask) !== (low.original & typeMask)) {
    problems.push(`its type bits are not read-only (read ${hex(low.original, 8)}, then ${hex(low.ones, 8)} after writing all-ones, ${hex(low.zeros, 8)} after writing 0)`);
  }
  if ((low.zeros & ~typeMask) !== 0) problems.push(`address bits stay set after writing 0 (read ${hex(low.zeros, 8)})`);
  if (low.restored !== low.original) problems.push(`writing its address ${hex(low.original, 8)} back reads ${hex(low.restored, 8)}`);

  if (io) {
    if (low.original & 2) problems.push("bit 1 of an I/O BAR is reserved and must read 0");
    let mask = (low.ones & ~0x3) >>> 0;
    if (mask !== 0 && mask >>> 16 === 0) mask = (mask | 0xffff_0000) >>> 0; // a 16-bit I/O decoder
    const size = mask === 0 ? undefined : decodeSize(BigInt(mask), 32);
    if (size === undefined) {
      problems.push(`writing all-ones reads back ${hex(low.ones, 8)}: the writable address bits are not a power-of-two size mask`);
      return { problems, kind: "io" };
    }
    return { problems, bar: { index, kind: "io", size: Number(size), prefetchable: false } };
  }

  const type = (low.original >>> 1) & 0x3;
  if (type === 1 || type === 3) {
    problems.push(`memory type ${type} is reserved (0 = 32-bit, 2 = 64-bit)`);
    return { problems };
  }
  const prefetchable = (low.original & 0x8) !== 0;
  if (type === 0) {
    const mask = (low.ones & ~0xf) >>> 0;
    const size = mask === 0 ? undefined : decodeSize(BigInt(mask), 32);
    if (size === undefined) {
      problems.push(`writing all-ones reads back ${hex(low.ones, 8)}: the writable address bits are not a power-of-two size mask`);
      return { problems, kind: "mem32" };
    }
    return { problems, bar: { index, kind: "mem32", size: Number(size), prefetchable } };
  }
  if (index === 5) {
    problems.push("a 64-bit BAR in the last register has no register for its upper half");
    return { problems };
  }
  const high = sizeDword(probe, offset + 4);
  if (high.zeros !== 0) problems.push(`its upper half (BAR${index + 1}) reads ${hex(high.zeros, 8)} after writing 0`);
  if (high.restored !== high.original) problems.push(`writing its upper half ${hex(high.original, 8)} back reads ${hex(high.restored, 8)}`);
  const mask = (BigInt(high.ones) << 32n) | BigInt((low.ones & ~0xf) >>> 0);
  const size = mask === 0n ? undefined : decodeSize(mask, 64);
  if (size === undefined) {
    problems.push(`writing all-ones reads back ${hex(high.ones, 8)}:${hex(low.ones, 8).slice(2)} (upper:lower): the writable address bits are not a power-of-two size mask`);
    return { problems, pair: true, kind: "mem64" };
  }
  return { problems, pair: true, bar: { index, kind: "mem64", size: Number(size), prefetchable } };
}

function comparedWithDescriptor(found: SizedBar | undefined, declared: PciBarDescriptor | undefined): string | undefined {
  if (!found || !declared) return undefined;
  if (found.kind !== declared.kind || found.size !== declared.size) {
    return `config space shows ${kindText(found.kind, found.size)} but device.bars declares ${kindText(declared.kind, declared.size)}`;
  }
  if (found.prefetchable !== (declared.prefetchable ?? false)) {
    return `config space says ${found.prefetchable ? "" : "not "}prefetchable but device.bars says ${declared.prefetchable ? "" : "not "}prefetchable`;
  }
  return undefined;
}

/**
 * Sizes every BAR as a guest does (decoding off, all-ones written, read back, restored) and checks it against
 * `device.bars`: a contiguous power-of-two mask, read-only type bits, minimum sizes, 64-bit BARs taking two
 * registers. Returns the BARs found (what MSI-X placement is checked against).
 */
export function checkBars(probe: ConfigProbe, checks: CheckList): Map<number, SizedBar> {
  const declared = new Map(probe.device.bars.map((b) => [b.index, b] as const));
  const found = new Map<number, SizedBar>();
  const command = probe.read(Reg.COMMAND, 2);
  probe.write(Reg.COMMAND, 2, command & ~(Command.IO | Command.MEMORY));
  try {
    for (let index = 0; index < 6; index++) {
      const offset = barOffset(index);
      const name = `BAR${index}`;
      const decl = declared.get(index);
      const { original, ones } = sizeDword(probe, offset);
      if (original === 0 && ones === 0) {
        checks.record(`${name} (not implemented)`, offset, decl ? `reads 0 after writing all-ones, but device.bars declares ${kindText(decl.kind, decl.size)} here` : undefined);
        continue;
      }
      const sized = sizeBar(probe, index);
      const problems = [...sized.problems];
      if (!decl) problems.push(`is implemented (writing all-ones reads ${hex(ones, 8)}) but device.bars declares no BAR ${index}`);
      const mismatch = comparedWithDescriptor(sized.bar, decl);
      if (mismatch) problems.push(mismatch);
      if (sized.bar) found.set(index, sized.bar);
      else if (sized.kind) found.set(index, { index, kind: sized.kind, size: Number.POSITIVE_INFINITY, prefetchable: false });
      checks.recordAll(`${name} sizing${sized.pair ? ` (64-bit, BAR${index + 1} its upper half)` : ""}`, offset, problems);
      if (sized.pair) {
        if (declared.has(index + 1)) checks.record(`BAR${index + 1}`, offset + 4, `is the upper half of 64-bit BAR${index}, but device.bars declares a BAR there too`);
        index++;
      }
    }
    checkRom(probe, checks);
  } finally {
    probe.write(Reg.COMMAND, 2, command);
  }
  return found;
}

/** The expansion ROM BAR: absent when no ROM is declared, else sized like a memory BAR to `device.rom.size`. */
function checkRom(probe: ConfigProbe, checks: CheckList): void {
  const rom = probe.device.rom;
  const { original, ones, restored } = sizeDword(probe, Reg.ROM_BAR, ALL_ONES - 1);
  const address = (ones & ROM_ADDRESS_MASK) >>> 0;
  if (!rom) {
    checks.record("expansion ROM BAR (none declared)", Reg.ROM_BAR, address ? `has writable address bits (${hex(ones, 8)}) but the device declares no ROM` : undefined);
    return;
  }
  const problems: string[] = [];
  const size = address === 0 ? undefined : decodeSize(BigInt(address), 32);
  if (size === undefined) problems.push(`writing all-ones reads back ${hex(ones, 8)}: the writable address bits are not a power-of-two size mask`);
  else if (Number(size) !== rom.size) problems.push(`sizes to ${size} bytes but device.rom.size is ${rom.size}`);
  if (ones & ROM_RESERVED) problems.push(`bits 1-10 are reserved and must read 0 (read ${hex(ones, 8)})`);
  if (restored !== original) problems.push(`writing its address ${hex(original, 8)} back reads ${hex(restored, 8)}`);
  checks.recordAll("expansion ROM BAR sizing", Reg.ROM_BAR, problems);
}
