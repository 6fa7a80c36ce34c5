import type { PciCapability } from "@vmm/core";
import { writeLe } from "../config/masked-bytes.js";

export const EXPRESS_CAPABILITY_ID = 0x10;

export type ExpressDeviceType = "endpoint" | "legacy-endpoint" | "rc-integrated";

/** Device/port type field values (PCIe capabilities register bits 7:4). */
export const EXPRESS_TYPE_CODE: Record<ExpressDeviceType, number> = {
  endpoint: 0x0,
  "legacy-endpoint": 0x1,
  "rc-integrated": 0x9,
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
};

// Register offsets inside the capability (header included); body offset = offset - 2.
const FLAGS = 0x02;
const DEVCAP = 0x04;
const DEVCTL = 0x08;
const DEVSTA = 0x0a;
const LNKCAP = 0x0c;
const LNKCTL = 0x10;
const LNKSTA = 0x12;

/** Device Capabilities: 128-byte max payload, role-based error reporting (required by 1.1), no extra latency limits. */
const DEVCAP_VALUE = 1 << 15;
/** Device Control: error reporting enables, relaxed ordering, max payload, extended tag, phantom, aux power, no snoop, max read request. */
const DEVCTL_WRITABLE = 0x7fff;
/** Reset value: relaxed ordering, no snoop, 512-byte max read request. */
const DEVCTL_RESET = (1 << 4) | (1 << 11) | (2 << 12);
/** Device Status error bits (correctable, non-fatal, fatal, unsupported request) are write-1-to-clear. */
const DEVSTA_W1C = 0x000f;
/** Link: 2.5 GT/s, x1. */
const LNKCAP_VALUE = 0x1 | (0x1 << 4);
/** Link Control: ASPM control, read completion boundary, common clock, extended synch. */
const LNKCTL_WRITABLE = 0x3 | (1 << 3) | (1 << 6) | (1 << 7);
const LNKSTA_VALUE = 0x1 | (0x1 << 4);

/** Builds the PCI Express capability (version 1) for an endpoint, legacy endpoint or RCiEP. */
export function expressCapability(type: ExpressDeviceType): PciCapability {
  const size = EXPRESS_V1_SIZE[type];
  const body = new Uint8Array(size - 2);
  const writable = new Uint8Array(size - 2);
  const writeOneToClear = new Uint8Array(size - 2);
  const b = (offset: number) => offset - 2;
  writeLe(body, b(FLAGS), 2, 0x1 | (EXPRESS_TYPE_CODE[type] << 4));
  writeLe(body, b(DEVCAP), 4, DEVCAP_VALUE);
  writeLe(body, b(DEVCTL), 2, DEVCTL_RESET);
  writeLe(writable, b(DEVCTL), 2, DEVCTL_WRITABLE);
  writeLe(writeOneToClear, b(DEVSTA), 2, DEVSTA_W1C);
  if (type !== "rc-integrated") {
    writeLe(body, b(LNKCAP), 4, LNKCAP_VALUE);
    writeLe(writable, b(LNKCTL), 2, LNKCTL_WRITABLE);
    writeLe(body, b(LNKSTA), 2, LNKSTA_VALUE);
  }
  return { id: EXPRESS_CAPABILITY_ID, body, writable, writeOneToClear };
}
