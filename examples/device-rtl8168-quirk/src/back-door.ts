import { type DeviceQuirk, type QuirkDevice, type QuirkWindow, type RegisterSpec, RegisterTable } from "@vmm/core";

/**
 * The RTL8168's MSI-X back door in BAR2: a data register and an address register through which the chip (and
 * Linux's r8169 driver on it) reads and writes the MSI-X table indirectly.
 *
 * - Address bits 30:16 select the target; 1 is the MSI-X table. Bits 15:12 are byte enables (the table is always
 *   accessed a dword at a time, so they are ignored), bits 11:0 the byte offset in the target.
 * - Bit 31 set in a written address asks for a write of the data register to that offset; clear, for a read into
 *   the data register. The chip inverts bit 31 when the request completes: a write then reads back clear, a read
 *   back set.
 */
export const BackDoor = {
  BAR: 2,
  DATA: 0x70,
  ADDRESS: 0x74,
  WRITE: 0x8000_0000,
  TARGET_SHIFT: 16,
  TARGET_MASK: 0x7fff,
  TARGET_MSIX_TABLE: 1,
  OFFSET_MASK: 0xfff,
} as const;

export const REALTEK_VENDOR_ID = 0x10ec;
export const RTL8168_DEVICE_ID = 0x8168;
export const QUIRK_NAME = "rtl8168-msix-back-door";

/** What the window remembers between accesses: the last address written to the table, and the last data. */
export interface BackDoorState {
  /** The last address written, when it named the MSI-X table (its requests are answered by this quirk). */
  address: number;
  data: number;
  /** The last address written named the MSI-X table: reads of both registers are the quirk's to answer. */
  latched: boolean;
  readonly device: QuirkDevice;
}

const isTableTarget = (address: number) => ((address >>> BackDoor.TARGET_SHIFT) & BackDoor.TARGET_MASK) === BackDoor.TARGET_MSIX_TABLE;
const real = (s: BackDoorState) => s.device.bar(BackDoor.BAR);

/**
 * The two registers, window-relative (0 = BAR2 0x70). Every access also reaches the device as it would without the
 * quirk, except a table write request, which goes to the VMM's emulated MSI-X table instead: on the device it would
 * overwrite the message the host programmed, and the guest's interrupts would never arrive.
 */
const REGISTERS: readonly RegisterSpec<BackDoorState>[] = [
  {
    name: "DATA",
    offset: 0,
    width: 4,
    // After a request to the table, the data register shows the emulated table's dword at that offset.
    read: (s) => {
      const value = real(s).read(BackDoor.DATA, 4);
      const table = s.device.msixTable;
      return s.latched && table ? table.read(s.address & BackDoor.OFFSET_MASK, 4) : value;
    },
    // Kept for a table write that may follow, and written to the device as well (harmless: only the address
    // register starts a request).
    write: (s, value) => {
      s.data = value;
      real(s).write(BackDoor.DATA, 4, value);
    },
  },
  {
    name: "ADDRESS",
    offset: 4,
    width: 4,
    // After a request to the table, the flag reads inverted (the request completed); otherwise the device answers.
    read: (s) => {
      const value = real(s).read(BackDoor.ADDRESS, 4);
      return s.latched ? (s.address ^ BackDoor.WRITE) >>> 0 : value;
    },
    write: (s, value) => {
      s.latched = isTableTarget(value);
      if (s.latched) {
        s.address = value;
        if (value & BackDoor.WRITE) {
          // The guest's table write lands in the emulated table (nowhere when the VMM shows no MSI-X), never on the
          // device.
          s.device.msixTable?.write(value & BackDoor.OFFSET_MASK, 4, s.data);
          return;
        }
      }
      // Other targets, and table read requests, reach the device.
      real(s).write(BackDoor.ADDRESS, 4, value);
    },
  },
];

/**
 * Only whole, aligned dword accesses are the back door's; anything else (a narrow or straddling access) is dropped:
 * reads all-ones, writes ignored. Passing it on could start a request on the device behind the VMM's back.
 */
export const BACK_DOOR_REGISTERS = new RegisterTable<BackDoorState>(REGISTERS, {
  narrowRead: "refuse",
  narrowWrite: "refuse",
  spanning: "refuse",
  fill: 0xff,
});

/** The back door's window over one device (the state lives as long as the device). */
export function backDoorWindow(device: QuirkDevice): QuirkWindow {
  const state: BackDoorState = { address: 0, data: 0, latched: false, device };
  const handler = BACK_DOOR_REGISTERS.handler(state);
  return {
    name: "MSI-X back door",
    target: { bar: BackDoor.BAR },
    offset: BackDoor.DATA,
    size: 8,
    read: (offset, size) => handler.read(offset, size),
    write: (offset, size, value) => handler.write(offset, size, value),
  };
}

/** The quirk: every RTL8168 (10ec:8168) passed through gets the back door's window over BAR2 0x70-0x77. */
export const rtl8168BackDoorQuirk: DeviceQuirk = {
  name: QUIRK_NAME,
  description: "redirects the MSI-X back door (BAR2 0x70 data, 0x74 address) to the VMM's emulated MSI-X table",
  match: { vendorId: REALTEK_VENDOR_ID, deviceId: RTL8168_DEVICE_ID },
  windows: (device) => [backDoorWindow(device)],
};
