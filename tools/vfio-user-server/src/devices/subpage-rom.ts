import { RegisterTable } from "@vmm/core";
import type { DeviceInternals, DeviceSpec } from "../device/device-spec.js";
import { registerWindow } from "../device/register-window.js";
import { buildOptionRom } from "./option-rom.js";

const ROM_SIZE = 0x10000;
const IDENTITY = { vendor: 0x8086, device: 0x100e, revision: 0x03, classCode: 0x020000, subsystemVendor: 0x8086, subsystem: 0x001e, interruptPin: 1 };

interface IoWindow {
  address: number;
}

/**
 * The e1000-style I/O window of BAR1: IOADDR (0x0) selects a dword of the memory BAR, IODATA (0x4) reads or writes
 * it (addresses past the 256-byte BAR read 0 and drop writes).
 */
function ioAddressData(device: DeviceInternals) {
  const inBar = (address: number): boolean => address + 4 <= 0x100;
  const table = new RegisterTable<IoWindow>([
    { name: "IOADDR", offset: 0x0, width: 4, field: "address", mask: 0x1fffc },
    {
      name: "IODATA",
      offset: 0x4,
      width: 4,
      read: (s) => (inBar(s.address) ? new DataView(device.regionRead(0, s.address, 4).buffer).getUint32(0, true) : 0),
      write: (s, value) => {
        if (!inBar(s.address)) return;
        const bytes = new Uint8Array(4);
        new DataView(bytes.buffer).setUint32(0, value, true);
        device.regionWrite(0, s.address, bytes);
      },
    },
  ]);
  return registerWindow("IOADDR/IODATA", 0, table, (): IoWindow => ({ address: 0 }));
}

/**
 * An e1000-like function (8086:100e) with a sub-page BAR: BAR0 is 256 bytes of memory (trapped: too small to
 * mmap; the test engine at 0x40), BAR1 64 bytes of I/O, and a 64 KiB expansion ROM. Conventional PCI.
 */
export function subpageRom(): DeviceSpec {
  return {
    name: "subpage-rom",
    engineId: 3,
    identity: IDENTITY,
    express: false,
    bars: [
      { index: 0, kind: "mem32", size: 0x100 },
      { index: 1, kind: "io", size: 0x40, windows: (d) => [ioAddressData(d)] },
    ],
    rom: buildOptionRom({ vendor: IDENTITY.vendor, device: IDENTITY.device, classCode: IDENTITY.classCode, size: ROM_SIZE }),
    engine: { bar: 0, offset: 0x40 },
    capabilities: [
      { kind: "pm", offset: 0x40, pmc: 0x4822 },
      { kind: "msi", offset: 0x50, vectors: 1, is64Bit: false, perVectorMask: false },
    ],
    extendedCapabilities: [],
  };
}
