import type { PciCapability } from "@vmm/core";
import { writeLe } from "../config/masked-bytes.js";

export const EXPRESS_CAPABILITY_ID = 0x10;

export type ExpressDeviceType = "endpoint" | "legacy-endpoint" | "rc-integrated" | "root-port";

/** Device/port type field values (PCIe capabilities register bits 7:4). */
export const EXPRESS_TYPE_CODE: Record<ExpressDeviceType, number> = {
  endpoint: 0x0,
  "legacy-endpoint": 0x1,
  "rc-integrated": 0x9,
  "root-port": 0x4,
};

/**
 * Total capability size (header included) for a version 1 structure, per PCI Express 1.1: endpoints and legacy
 * endpoints end after Link Status (0x14); a root-complex integrated endpoint has no link, so it ends after
 * Device Status (0x0C).
 */
export const EXPRESS_V1_SIZE: Record<ExpressDeviceType, number> = {
  endpoint: 0x14,
  "legacy-endpoint": 0x14,
  "rc-integrated": 0x0c,
  "root-port": 0x24,
};

/**
 * Register offsets in the PCI Express capability, header included (a body offset is one of these minus 2), for
 * every function that builds or virtualizes one (this package's capabilities, a passthrough device's).
 */
export const ExpressReg = {
  FLAGS: 0x02,
  DEVCAP: 0x04,
  DEVCTL: 0x08,
  DEVSTA: 0x0a,
  LNKCAP: 0x0c,
  LNKCTL: 0x10,
  LNKSTA: 0x12,
  SLTCAP: 0x14,
  SLTCTL: 0x18,
  SLTSTA: 0x1a,
  RTCTL: 0x1c,
  RTSTA: 0x20,
  DEVCAP2: 0x24,
  DEVCTL2: 0x28,
  DEVSTA2: 0x2a,
  LNKCAP2: 0x2c,
  LNKCTL2: 0x30,
  LNKSTA2: 0x32,
  /** The end of a version 2 capability. */
  V2_END: 0x3c,
} as const;

/** Capabilities register bit 8: the port is connected to a slot. */
export const EXPRESS_FLAGS_SLOT = 1 << 8;
/** The link this VMM's root ports and the endpoints below them report: 2.5 GT/s (speed 1), x1 (Link Capabilities and Status). */
export const EXPRESS_LINK_2_5GT_X1 = 0x1 | (0x1 << 4);
/** Link Control bits a guest may write: ASPM control, read completion boundary, common clock, extended synch. */
export const EXPRESS_LNKCTL_WRITABLE = 0x3 | (1 << 3) | (1 << 6) | (1 << 7);

const { FLAGS, DEVCAP, DEVCTL, DEVSTA, LNKCAP, LNKCTL, LNKSTA, SLTCAP, SLTCTL, SLTSTA, RTCTL, RTSTA } = ExpressReg;

/** Device Capabilities: 128-byte max payload, role-based error reporting (required by 1.1), no extra latency limits. */
const DEVCAP_VALUE = 1 << 15;
/** Device Control: error reporting enables, relaxed ordering, max payload, extended tag, phantom, aux power, no snoop, max read request. */
const DEVCTL_WRITABLE = 0x7fff;
/** Reset value: relaxed ordering, no snoop, 512-byte max read request. */
const DEVCTL_RESET = (1 << 4) | (1 << 11) | (2 << 12);
/** Device Status error bits (correctable, non-fatal, fatal, unsupported request) are write-1-to-clear. */
const DEVSTA_W1C = 0x000f;
const LNKCAP_VALUE = EXPRESS_LINK_2_5GT_X1;
const LNKCTL_WRITABLE = EXPRESS_LNKCTL_WRITABLE;
const LNKSTA_VALUE = EXPRESS_LINK_2_5GT_X1;
const FLAGS_SLOT = EXPRESS_FLAGS_SLOT;
/** Link Capabilities bit 20: the port reports Data Link Layer Link Active. */
const LNKCAP_DLLLA_REPORTING = 1 << 20;
/** Link Status: slot clock configuration (bit 12), Data Link Layer Link Active (bit 13): a trained link. */
const LNKSTA_PORT = LNKSTA_VALUE | (1 << 12) | (1 << 13);
/** Slot Status bit 6: Presence Detect State (a card is in the slot). */
const SLTSTA_PRESENT = 1 << 6;
/** Slot Control: attention/power indicator, power controller, interrupt enables (no hot-plug behind them). */
const SLTCTL_WRITABLE = 0x1fff;
/** Slot Status change bits (attention button, power fault, MRL, presence detect, command completed, DLL state). */
const SLTSTA_W1C = 0x011f;
/** Root Control: system error on correctable/non-fatal/fatal errors, PME interrupt enable. */
const RTCTL_WRITABLE = 0x000f;
/** Root Status: PME status (bit 16) is write-1-to-clear. */
const RTSTA_W1C = 1 << 16;

/** Where a root port sits: its port number (Link Capabilities) and physical slot number (Slot Capabilities). */
export interface ExpressPortOptions {
  readonly port?: number;
  readonly slot?: number;
}

/**
 * Builds the PCI Express capability (version 1) for an endpoint, legacy endpoint, RCiEP or root port. A root port
 * adds slot and root registers (through Root Status, 0x24 bytes): a trained link (Data Link Layer Link Active),
 * a populated slot (Presence Detect State), no hot-plug.
 */
export function expressCapability(type: ExpressDeviceType, port: ExpressPortOptions = {}): PciCapability {
  const size = EXPRESS_V1_SIZE[type];
  const body = new Uint8Array(size - 2);
  const writable = new Uint8Array(size - 2);
  const writeOneToClear = new Uint8Array(size - 2);
  const b = (offset: number) => offset - 2;
  const rootPort = type === "root-port";
  writeLe(body, b(FLAGS), 2, 0x1 | (EXPRESS_TYPE_CODE[type] << 4) | (rootPort ? FLAGS_SLOT : 0));
  writeLe(body, b(DEVCAP), 4, DEVCAP_VALUE);
  writeLe(body, b(DEVCTL), 2, DEVCTL_RESET);
  writeLe(writable, b(DEVCTL), 2, DEVCTL_WRITABLE);
  writeLe(writeOneToClear, b(DEVSTA), 2, DEVSTA_W1C);
  if (type !== "rc-integrated") {
    writeLe(body, b(LNKCAP), 4, LNKCAP_VALUE);
    writeLe(writable, b(LNKCTL), 2, LNKCTL_WRITABLE);
    writeLe(body, b(LNKSTA), 2, LNKSTA_VALUE);
  }
  if (rootPort) {
    // A trained x1 link to a populated slot: port and slot numbers name the port; no hot-plug.
    writeLe(body, b(LNKCAP), 4, (LNKCAP_VALUE | LNKCAP_DLLLA_REPORTING | ((port.port ?? 0) & 0xff) << 24) >>> 0);
    writeLe(body, b(LNKSTA), 2, LNKSTA_PORT);
    writeLe(body, b(SLTCAP), 4, (((port.slot ?? 0) & 0x1fff) << 19) >>> 0);
    writeLe(writable, b(SLTCTL), 2, SLTCTL_WRITABLE);
    writeLe(body, b(SLTSTA), 2, SLTSTA_PRESENT);
    writeLe(writeOneToClear, b(SLTSTA), 2, SLTSTA_W1C);
    writeLe(writable, b(RTCTL), 2, RTCTL_WRITABLE);
    writeLe(writeOneToClear, b(RTSTA), 4, RTSTA_W1C);
  }
  return { id: EXPRESS_CAPABILITY_ID, body, writable, writeOneToClear };
}
