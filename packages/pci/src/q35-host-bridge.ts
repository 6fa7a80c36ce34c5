import type { DeviceState, SmallAccessSize } from "@vmm/core";
import { HOST_BRIDGE_CLASS, HOST_BRIDGE_DEVICE_ID, HOST_BRIDGE_VENDOR_ID } from "./host-bridge.js";
import { PciFunction } from "./function.js";

/**
 * The Q35 (82G33/P35 MCH) host bridge registers that firmware programs, after Intel's datasheet and QEMU's
 * machine model: PCIEXBAR (where MMCONFIG/ECAM decodes), PAM0-6 (shadowing of 0xC0000-0xFFFFF), SMRAM/ESMRAMC
 * (read back sanely; this machine has no SMM) and TOLUD (read-only top of low memory).
 */
export const Q35Reg = {
  PCIEXBAR: 0x60,
  PAM0: 0x90,
  SMRAM: 0x9d,
  ESMRAMC: 0x9e,
  TOLUD: 0xb0,
} as const;

/** Subsystem IDs that QEMU gives its host bridges; SeaBIOS and OVMF look for them to know they run under a QEMU-like VMM. */
export const QEMU_SUBSYSTEM_VENDOR_ID = 0x1af4;
export const QEMU_SUBSYSTEM_ID = 0x1100;

const PCIEXBAR_ENABLE = 0x1;
/** Length field (bits 2:1): 0 = 256 buses, 1 = 128, 2 = 64, 3 reserved. */
const PCIEXBAR_LENGTH_SHIFT = 1;
/** Low dword bits that can be written: enable, length and base bits 31:26 (bits 35:32 live in the high dword). */
const PCIEXBAR_LOW_WRITABLE = 0xfc00_0007;
const PCIEXBAR_HIGH_WRITABLE = 0xf;
const PAM_COUNT = 7;
/** SMRAM default: compatible SMRAM at 0xA0000 (C_BASE_SEG = 010b); D_OPEN, D_CLS, D_LCK, G_SMRAME are writable. */
const SMRAM_DEFAULT = 0x02;
const SMRAM_WRITABLE = 0x78;
/** ESMRAMC default as QEMU resets it (SM_CACHE, SM_L1, SM_L2 set); H_SMRAME, TSEG_SZ, T_EN writable. */
const ESMRAMC_DEFAULT = 0x38;
const ESMRAMC_WRITABLE = 0x87;

/** Where the ECAM window decodes (when enabled): base address and number of buses. */
export interface EcamWindow {
  readonly enabled: boolean;
  readonly base: number;
  readonly busCount: number;
}

/** How one PAM segment decodes: reads and writes each go to RAM (true) or to the ROM / PCI side (false). */
export interface PamSegment {
  readonly start: number;
  readonly size: number;
  readonly readRam: boolean;
  readonly writeRam: boolean;
}

export interface Q35HostBridgeOptions {
  /** Where ECAM decodes at reset (enabled); firmware may move or disable it. */
  readonly ecam: { readonly base: number; readonly busCount: 64 | 128 | 256 };
  /** Top of RAM below 4 GiB (TOLUD; rounded down to 1 MiB). */
  readonly lowRamTop?: number;
  /** Called after a write or reset changed PCIEXBAR. */
  readonly onEcamChange?: (window: EcamWindow) => void;
  /** Called after a write or reset changed any PAM register, with all 13 segments. */
  readonly onPamChange?: (segments: readonly PamSegment[]) => void;
}

/** The 13 PAM segments for the PAM0-6 register values: 0xF0000 (64 KiB) from PAM0, then 16 KiB halves from 0xC0000. */
export function pamSegments(pam: ArrayLike<number>): PamSegment[] {
  const mode = (bits: number) => ({ readRam: (bits & 1) !== 0, writeRam: (bits & 2) !== 0 });
  const out: PamSegment[] = [];
  for (let i = 1; i < PAM_COUNT; i++) {
    const base = 0xc0000 + (i - 1) * 0x8000;
    out.push({ start: base, size: 0x4000, ...mode(pam[i]! & 0x3) });
    out.push({ start: base + 0x4000, size: 0x4000, ...mode((pam[i]! >> 4) & 0x3) });
  }
  out.push({ start: 0xf0000, size: 0x10000, ...mode((pam[0]! >> 4) & 0x3) });
  return out;
}

/** Decodes a 64-bit PCIEXBAR value. */
export function decodePciexbar(low: number, high: number): EcamWindow {
  const length = (low >>> PCIEXBAR_LENGTH_SHIFT) & 3;
  const busCount = length === 0 ? 256 : length === 1 ? 128 : length === 2 ? 64 : 0;
  const alignMask = busCount === 256 ? 0xf000_0000 : busCount === 128 ? 0xf800_0000 : 0xfc00_0000;
  const base = (high & PCIEXBAR_HIGH_WRITABLE) * 2 ** 32 + ((low & alignMask) >>> 0);
  return { enabled: (low & PCIEXBAR_ENABLE) !== 0 && busCount !== 0, base, busCount };
}

function encodePciexbar(base: number, busCount: number): [number, number] {
  const length = busCount === 256 ? 0 : busCount === 128 ? 1 : 2;
  return [((base % 2 ** 32) | (length << PCIEXBAR_LENGTH_SHIFT) | PCIEXBAR_ENABLE) >>> 0, Math.floor(base / 2 ** 32)];
}

/**
 * A host bridge at 00:00.0 that behaves like Q35's MCH where firmware looks: QEMU's subsystem IDs, PCIEXBAR
 * (enable, base, length; a change is reported through `onEcamChange` so the machine moves ECAM), PAM0-6 (reported
 * through `onPamChange` so the machine remaps 0xC0000-0xFFFFF), SMRAM/ESMRAMC with their reset values, TOLUD.
 */
export class Q35HostBridge extends PciFunction {
  private readonly resetPciexbar: [number, number];

  /** Snapshots: everything it keeps is in config space. */
  protected override saveDeviceState(): undefined {
    return undefined;
  }

  constructor(private readonly q35: Q35HostBridgeOptions) {
    super({
      name: "host-bridge",
      vendorId: HOST_BRIDGE_VENDOR_ID,
      deviceId: HOST_BRIDGE_DEVICE_ID,
      classCode: HOST_BRIDGE_CLASS,
      subsystemVendorId: QEMU_SUBSYSTEM_VENDOR_ID,
      subsystemId: QEMU_SUBSYSTEM_ID,
    });
    this.resetPciexbar = encodePciexbar(q35.ecam.base, q35.ecam.busCount);
    this.defineRegister({ name: "PCIEXBAR", offset: Q35Reg.PCIEXBAR, size: 4, initial: this.resetPciexbar[0], writable: PCIEXBAR_LOW_WRITABLE });
    this.defineRegister({ name: "PCIEXBAR high", offset: Q35Reg.PCIEXBAR + 4, size: 4, initial: this.resetPciexbar[1], writable: PCIEXBAR_HIGH_WRITABLE });
    for (let i = 0; i < PAM_COUNT; i++) {
      this.defineRegister({ name: `PAM${i}`, offset: Q35Reg.PAM0 + i, size: 1, initial: 0, writable: i === 0 ? 0x30 : 0x33 });
    }
    this.defineRegister({ name: "SMRAM", offset: Q35Reg.SMRAM, size: 1, initial: SMRAM_DEFAULT, writable: SMRAM_WRITABLE });
    this.defineRegister({ name: "ESMRAMC", offset: Q35Reg.ESMRAMC, size: 1, initial: ESMRAMC_DEFAULT, writable: ESMRAMC_WRITABLE });
    const tolud = Math.min(q35.lowRamTop ?? 0, 0xfff0_0000);
    this.defineRegister({ name: "TOLUD", offset: Q35Reg.TOLUD, size: 2, initial: ((tolud >>> 20) << 4) & 0xfff0 });
  }

  /** Where ECAM decodes now. */
  get ecamWindow(): EcamWindow {
    return decodePciexbar(this.config.file.read(Q35Reg.PCIEXBAR, 4), this.config.file.read(Q35Reg.PCIEXBAR + 4, 4));
  }

  /** The PAM segments as the registers set them now. */
  get pam(): PamSegment[] {
    return pamSegments(Array.from({ length: PAM_COUNT }, (_, i) => this.config.file.read(Q35Reg.PAM0 + i, 1)));
  }

  override reset(): void {
    super.reset();
    this.config.file.set(Q35Reg.PCIEXBAR, 4, this.resetPciexbar[0]);
    this.config.file.set(Q35Reg.PCIEXBAR + 4, 4, this.resetPciexbar[1]);
    for (let i = 0; i < PAM_COUNT; i++) this.config.file.set(Q35Reg.PAM0 + i, 1, 0);
    this.config.file.set(Q35Reg.SMRAM, 1, SMRAM_DEFAULT);
    this.config.file.set(Q35Reg.ESMRAMC, 1, ESMRAMC_DEFAULT);
    this.q35.onEcamChange?.(this.ecamWindow);
    this.q35.onPamChange?.(this.pam);
  }

  /** After a restore (PCIEXBAR and PAM are config registers, restored with the rest): the machine hears both. */
  protected override restoreDeviceState(state: DeviceState | undefined): void {
    super.restoreDeviceState(state);
    this.q35.onEcamChange?.(this.ecamWindow);
    this.q35.onPamChange?.(this.pam);
  }

  protected override configWritten(offset: number, size: SmallAccessSize, _value: number): void {
    const touches = (start: number, length: number) => offset < start + length && offset + size > start;
    // A firmware writes the high dword, then the low one with the enable bit: each write is reported as it lands.
    if (touches(Q35Reg.PCIEXBAR, 8)) this.q35.onEcamChange?.(this.ecamWindow);
    if (touches(Q35Reg.PAM0, PAM_COUNT)) this.q35.onPamChange?.(this.pam);
  }
}
