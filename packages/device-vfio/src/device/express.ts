/**
 * The PCI Express capability of a passed-through device, and where it is placed.
 *
 * The device's own capability is shown at its own offset (drivers and firmware find it by walking the chain, but
 * some use the offset they know). What it says about the device itself passes through live: Device Capabilities,
 * Control and Status and their "2" variants (max payload, error reporting, completion timeouts, LTR). What it
 * says about where the device sits belongs to the VMM, because the guest sees the VMM's topology, not the host's:
 *
 * - Device/port type (Capabilities register bits 7:4) follows the placement the bus reports
 *   (`PciAttachContext.express`). On the root bus the device becomes a root-complex integrated endpoint (type 9).
 *   Windows' pci.sys refuses a PCI Express endpoint that has no root port or switch above it: every such
 *   device gets Code 10. The Xen Q35 passthrough series works around this by reporting endpoints as RCiEPs.
 *   Below one of our root ports the device becomes an endpoint (type 0; a legacy endpoint stays one), so that the
 *   type matches the port above it.
 * - Link registers: an RC integrated endpoint has no link. PCI Express 1.1 ends its capability after Device
 *   Status. Its Link Capabilities/Control/Status (and the "2" variants) read 0 here and ignore writes. The Xen
 *   workaround left the physical link registers in place, which gives an RCiEP that claims a link; this model does
 *   not. An endpoint below our root port reports the link that port reports: 2.5 GT/s, x1 (Link Capabilities
 *   and Status; Link Capabilities 2 lists only 2.5 GT/s). The guest then sees both ends of one link agree. Link
 *   Control is emulated (ASPM, common clock...): the physical link belongs to the host, and the guest's settings
 *   for the virtual link must not reach it.
 * - Slot and root registers (version 2, 0x14-0x23) read 0 and ignore writes: an endpoint has no slot.
 * - Initiate Function Level Reset (Device Control bit 15) is caught: the model resets the device through the
 *   backend (VFIO_DEVICE_RESET) and its own interrupt state with it, rather than letting the device reset behind
 *   the VMM's back.
 *
 * Conventional PCI placement hides the capability from the chain: a PCI Express capability on a conventional bus
 * makes guests look for extended config space and link management that is not there. A device without a
 * capability of its own (or with one that overlaps the next capability, hidden) is conventional PCI hardware and
 * stays conventional wherever it is placed.
 *
 * Extended config space (0x100 and up) is read from the device only when the function is placed as PCI Express
 * (kvmtool's v3 series reads only the legacy 256 bytes for the same reason: PCI Express 1.1 requires MSI, MSI-X
 * and the PCI Express capability to be reachable there, for legacy software).
 */
import { readLE, writeLE, type PciCapability, type SmallAccessSize } from "@vmm/core";
import {
  EXPRESS_CAPABILITY_ID,
  EXPRESS_FLAGS_SLOT,
  EXPRESS_LINK_2_5GT_X1,
  EXPRESS_LNKCTL_WRITABLE,
  EXPRESS_TYPE_CODE,
  ExpressReg,
  type ExpressDeviceType,
} from "@vmm/pci";

const { FLAGS, DEVCAP, DEVCTL, DEVSTA, LNKCAP, LNKCTL, LNKSTA, DEVCAP2, DEVCTL2, DEVSTA2, LNKCAP2, LNKCTL2, LNKSTA2, V2_END } = ExpressReg;
/** The end of a version 1 endpoint's capability (after Link Status). */
const V1_END = 0x14;
/** Without link registers (a version 1 RCiEP ends after Device Status). */
const MIN_LENGTH = 0x0c;

const TYPE_ENDPOINT = EXPRESS_TYPE_CODE.endpoint;
const TYPE_LEGACY_ENDPOINT = EXPRESS_TYPE_CODE["legacy-endpoint"];
const TYPE_RC_INTEGRATED = EXPRESS_TYPE_CODE["rc-integrated"];
const FLAGS_SLOT = EXPRESS_FLAGS_SLOT;
/** Device Control bit 15: Initiate Function Level Reset (reads 0). */
const DEVCTL_FLR = 1 << 15;
const LINK_2_5GT_X1 = EXPRESS_LINK_2_5GT_X1;
/** Link Capabilities 2: supported link speeds vector, bit 1 = 2.5 GT/s. */
const LNKCAP2_2_5GT = 1 << 1;
/** Link Control is emulated, never forwarded: the physical link is the host's. */
const LNKCTL_WRITABLE = EXPRESS_LNKCTL_WRITABLE;

/** The registers that pass through to the device, as [offset, length] in the capability. */
const PHYSICAL_V1: ReadonlyArray<readonly [number, number]> = [
  [DEVCAP, 4],
  [DEVCTL, 2],
  [DEVSTA, 2],
];
const PHYSICAL_V2: ReadonlyArray<readonly [number, number]> = [
  [DEVCAP2, 4],
  [DEVCTL2, 2],
  [DEVSTA2, 2],
];

/** Where the bus placed the function. */
export type ExpressPlacement = "endpoint" | "rc-integrated";

/**
 * The device's PCI Express capability as the VMM shows it (see the module comment). `body` holds the emulated
 * registers; `physicalBits()` says which bits pass through to the device.
 */
export class PassthroughExpressCapability implements PciCapability {
  readonly id = EXPRESS_CAPABILITY_ID;
  readonly body: Uint8Array;
  readonly writable: Uint8Array;
  /** The device's own device/port type and capability version. */
  readonly deviceType: number;
  readonly version: number;
  /** Set when the guest wrote Initiate Function Level Reset; the model takes it and clears it. */
  flrRequested = false;
  private readonly length: number;

  private constructor(config: Uint8Array, offset: number, length: number) {
    this.length = length;
    this.body = config.slice(offset + 2, offset + length);
    this.writable = new Uint8Array(length - 2);
    const flags = readLE(config, offset + FLAGS, 2);
    this.deviceType = (flags >> 4) & 0xf;
    this.version = flags & 0xf;
    this.set(FLAGS, 2, flags & ~FLAGS_SLOT);
    // Bits the model owns start clear: Initiate FLR, the link (until placed), slot and root registers.
    this.set(DEVCTL, 2, this.get(DEVCTL, 2) & ~DEVCTL_FLR);
    this.setWritable(DEVCTL, 2, DEVCTL_FLR);
    for (let at = LNKCAP; at < length; at++) if (!this.isPhysicalByte(at)) this.body[at - 2] = 0;
  }

  /** The device's capability at `offset` with `room` bytes before the next one, or why it cannot be shown. */
  static fromDevice(config: Uint8Array, offset: number, room: number): PassthroughExpressCapability | string {
    // Version 2 defines every register through 0x3b; version 1 ends after Link Status, or after Device Status
    // for an RCiEP. A capability that overlaps the next one is broken: the guest would read the other's bytes.
    const version = readLE(config, offset + FLAGS, 2) & 0xf;
    const length = version >= 2 ? (room >= V2_END ? V2_END : 0) : room >= V1_END ? V1_END : room >= MIN_LENGTH ? MIN_LENGTH : 0;
    if (length === 0) return `the version ${version} PCI Express capability at 0x${offset.toString(16)} does not fit in the ${room} bytes before the next capability`;
    return new PassthroughExpressCapability(config, offset, length);
  }

  /** Bytes the capability takes in config space, header included. */
  get size(): number {
    return this.length;
  }

  /** Per byte of the capability (header included): the bits that pass through to the device. */
  physicalBits(): Uint8Array {
    const bits = new Uint8Array(this.length);
    for (let at = 0; at < this.length; at++) if (this.isPhysicalByte(at)) bits[at] = 0xff;
    bits[DEVCTL + 1] = (DEVCTL_FLR >> 8) ^ 0xff; // Initiate FLR is the model's
    return bits;
  }

  /**
   * Rewrites the device/port type and the link registers for `placement`; returns the type to report
   * (`PciFunction.placeExpress` takes it).
   */
  place(placement: ExpressPlacement): ExpressDeviceType {
    const legacy = this.deviceType === TYPE_LEGACY_ENDPOINT;
    const type = placement === "rc-integrated" ? TYPE_RC_INTEGRATED : legacy ? TYPE_LEGACY_ENDPOINT : TYPE_ENDPOINT;
    this.set(FLAGS, 2, (this.get(FLAGS, 2) & ~0xf0) | (type << 4));
    const endpoint = placement === "endpoint";
    this.setLink(LNKCAP, 4, endpoint ? LINK_2_5GT_X1 : 0);
    this.setLink(LNKCTL, 2, 0, endpoint ? LNKCTL_WRITABLE : 0);
    this.setLink(LNKSTA, 2, endpoint ? LINK_2_5GT_X1 : 0);
    this.setLink(LNKCAP2, 4, endpoint ? LNKCAP2_2_5GT : 0);
    this.setLink(LNKCTL2, 2, endpoint ? 0x1 : 0); // target link speed 2.5 GT/s
    this.setLink(LNKSTA2, 2, 0);
    return placement === "rc-integrated" ? "rc-integrated" : legacy ? "legacy-endpoint" : "endpoint";
  }

  onWrite(offset: number, size: SmallAccessSize, value: number): void {
    // Initiate FLR is the high bit of Device Control's second byte (body offset DEVCTL - 2 + 1).
    const flrByte = DEVCTL + 1 - 2;
    if (flrByte < offset || flrByte >= offset + size) return;
    if (((value >>> (8 * (flrByte - offset))) & 0x80) === 0) return;
    this.body[flrByte] = this.body[flrByte]! & 0x7f;
    this.flrRequested = true;
  }

  /** Zeroes every emulated register (the capability hidden on a conventional bus). */
  clear(): void {
    this.body.fill(0);
    this.writable.fill(0);
  }

  private isPhysicalByte(at: number): boolean {
    const physical = this.version >= 2 && this.length >= V2_END ? [...PHYSICAL_V1, ...PHYSICAL_V2] : PHYSICAL_V1;
    return physical.some(([o, n]) => at >= o && at < o + n);
  }

  private setLink(offset: number, size: SmallAccessSize, value: number, writable = 0): void {
    if (offset + size > this.length) return;
    this.set(offset, size, value);
    this.setWritable(offset, size, writable);
  }

  private get(offset: number, size: SmallAccessSize): number {
    return readLE(this.body, offset - 2, size);
  }

  private set(offset: number, size: SmallAccessSize, value: number): void {
    writeLE(this.body, offset - 2, size, value);
  }

  private setWritable(offset: number, size: SmallAccessSize, mask: number): void {
    writeLE(this.writable, offset - 2, size, mask);
  }
}
