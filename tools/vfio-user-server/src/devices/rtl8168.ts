import { RegisterTable } from "@vmm/core";
import type { DeviceInternals, DeviceSpec } from "../device/device-spec.js";
import { aliasWindow, registerWindow } from "../device/register-window.js";
import { buildVpdImage } from "./vpd-image.js";

const MAC = [0x00, 0xe0, 0x4c, 0x68, 0x00, 0x01];
/** TxConfig's hardware version bits (XID 0x541: RTL8168h/8111h, the chip of PCI revision 0x15). */
const TX_CONFIG = 0x54100000;
const REG_TX_CONFIG = 0x40;

export const BACK_DOOR_DATA = 0x70;
export const BACK_DOOR_ADDRESS = 0x74;
/** Address register bit 31: set by the driver to write, inverted by the chip when the request completes. */
const BACK_DOOR_WRITE = 0x80000000;
/** Address register bits 30:16 select what the request reaches; 1 is the MSI-X table. */
const TARGET_SHIFT = 16;
const TARGET_MASK = 0x7fff;
export const BACK_DOOR_TARGET_MSIX = 1;
/** Bits 11:0: the byte offset in the target (bits 15:12 are byte enables, taken as a whole dword here). */
const OFFSET_MASK = 0xfff;

interface BackDoor {
  data: number;
  address: number;
}

/**
 * The RTL8168's MSI-X back door (BAR2 0x70 data, 0x74 address). An address write whose target field (bits 30:16)
 * is 1 reaches the device's own MSI-X table at byte (address & 0xfff): with bit 31 set it stores the data register
 * there, and the flag then reads clear; with bit 31 clear it loads that table dword into the data register, and the
 * flag then reads set (the chip inverts the flag on completion). Other targets are not modelled: the request
 * completes the same way and changes nothing (a read leaves 0 in the data register). The VMM never sees the table
 * change.
 */
function backDoor(device: DeviceInternals) {
  const table = new RegisterTable<BackDoor>([
    { name: "DATA", offset: 0, width: 4, field: "data" },
    {
      name: "ADDRESS",
      offset: 4,
      width: 4,
      read: (s) => s.address,
      write: (s, value) => {
        const msix = ((value >>> TARGET_SHIFT) & TARGET_MASK) === BACK_DOOR_TARGET_MSIX ? device.msixTable : undefined;
        const at = value & OFFSET_MASK & ~3;
        if (value & BACK_DOOR_WRITE) {
          msix?.writeDword(at, s.data);
          s.address = (value & ~BACK_DOOR_WRITE) >>> 0;
        } else {
          s.data = msix?.readDword(at) ?? 0;
          s.address = (value | BACK_DOOR_WRITE) >>> 0;
        }
      },
    },
  ]);
  return registerWindow("msi-x back door", BACK_DOOR_DATA, table, (): BackDoor => ({ data: 0, address: 0 }));
}

/**
 * Realtek RTL8168 (10ec:8168 rev 0x15): I/O BAR0 aliasing the registers of memory BAR2 (r8169-like storage with
 * the MSI-X back door; the test engine at 0x800), BAR4 holding the MSI-X table and PBA in its first page and
 * mmappable memory after it. Capabilities at the chip's offsets.
 */
export function rtl8168(): DeviceSpec {
  return {
    name: "rtl8168",
    engineId: 1,
    identity: { vendor: 0x10ec, device: 0x8168, revision: 0x15, classCode: 0x020000, subsystemVendor: 0x10ec, subsystem: 0x0123, interruptPin: 1 },
    express: true,
    bars: [
      { index: 0, kind: "io", size: 256, windows: (d) => [aliasWindow("registers (I/O alias of BAR2)", 256, { read: (o, n) => d.regionRead(2, o, n), write: (o, b) => d.regionWrite(2, o, b) })] },
      {
        index: 2,
        kind: "mem64",
        size: 0x1000,
        windows: (d) => [backDoor(d)],
        contents: (bytes) => {
          bytes.set(MAC, 0);
          new DataView(bytes.buffer, bytes.byteOffset).setUint32(REG_TX_CONFIG, TX_CONFIG, true);
        },
      },
      { index: 4, kind: "mem64", size: 0x4000, mmap: [{ offset: 0x1000, size: 0x3000 }] },
    ],
    engine: { bar: 2, offset: 0x800 },
    capabilities: [
      { kind: "pm", offset: 0x40, pmc: 0xffc3 },
      { kind: "msi", offset: 0x50, vectors: 1, is64Bit: true, perVectorMask: false },
      {
        kind: "pcie",
        offset: 0x70,
        version: 2,
        deviceCapabilities: 0x00008cc0, // MPS 128, L0s < 512 ns, L1 < 64 us, role-based error reporting
        deviceControl: 0x2810, // relaxed ordering, no snoop, MRRS 512
        linkCapabilities: 0x00477c11, // port 0, 2.5 GT/s, x1, ASPM L0s+L1, clock PM, ASPM optionality
        linkStatus: 0x1011, // 2.5 GT/s, x1, slot clock
        deviceCapabilities2: 0x000c081f, // completion timeout ranges A-D and disable, LTR, OBFF
        linkCapabilities2: 0x00000002, // 2.5 GT/s
        linkControl2: 0x0001,
      },
      { kind: "msix", offset: 0xb0, vectors: 4, tableBar: 4, tableOffset: 0x0, pbaBar: 4, pbaOffset: 0x800 },
      { kind: "vpd", offset: 0xd0, image: buildVpdImage("Realtek RTL8168 Gigabit Ethernet (vfio-user simulation)", { PN: "RTL8168H-SIM", EC: "A1", SN: "VFIOUSER8168" }) },
    ],
    extendedCapabilities: [
      { kind: "aer", offset: 0x100 },
      { kind: "vc", offset: 0x140 },
      { kind: "dsn", offset: 0x160, serial: 0x00000001684ce000n },
    ],
  };
}
