import type { DeviceSpec } from "../device/device-spec.js";

/** NVMe controller registers in BAR0's first page (plain memory there: the client may mmap it). */
const NVME_REGISTERS: readonly { offset: number; value: number }[] = [
  { offset: 0x00, value: 0x140103ff }, // CAP low: MQES 1023, contiguous queues required, timeout 10 s
  { offset: 0x04, value: 0x00000020 }, // CAP high: NVM command set, doorbell stride 4
  { offset: 0x08, value: 0x00010400 }, // VS 1.4
  { offset: 0x38, value: 0x00000003 }, // CMBLOC: controller memory buffer in BAR3, offset 0
  { offset: 0x3c, value: 0x0000121f }, // CMBSZ: 1 MiB (1 x 1 MiB units), SQ/CQ/PRP list/read/write data
];

/**
 * An NVMe-like controller (144d:a808): BAR0 is the 16 KiB register BAR whose first page the client may mmap, the
 * test engine in the second page, the MSI-X table and PBA in the third and fourth; BAR3 (a 64-bit BAR at an odd
 * index, BAR3+BAR4) is a 1 MiB prefetchable controller memory buffer, all mmappable. PCIe with FLR.
 */
export function nvme(): DeviceSpec {
  return {
    name: "nvme",
    engineId: 2,
    identity: { vendor: 0x144d, device: 0xa808, revision: 0x00, classCode: 0x010802, subsystemVendor: 0x144d, subsystem: 0xa801, interruptPin: 1 },
    express: true,
    bars: [
      {
        index: 0,
        kind: "mem64",
        size: 0x4000,
        mmap: [{ offset: 0x0, size: 0x1000 }],
        contents: (bytes) => {
          const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
          for (const r of NVME_REGISTERS) view.setUint32(r.offset, r.value, true);
        },
      },
      { index: 3, kind: "mem64", size: 0x100000, prefetchable: true, mmap: "all" },
    ],
    engine: { bar: 0, offset: 0x1000 },
    capabilities: [
      { kind: "pm", offset: 0x40, pmc: 0x0003, noSoftReset: true },
      { kind: "msix", offset: 0x50, vectors: 8, tableBar: 0, tableOffset: 0x2000, pbaBar: 0, pbaOffset: 0x3000 },
      // Version 1: the 0x20 bytes between 0x60 and MSI at 0x80 hold the 0x14-byte endpoint structure, not the
      // 0x3c bytes of version 2 (the rtl8168 carries a version 2 capability).
      {
        kind: "pcie",
        offset: 0x60,
        version: 1,
        deviceCapabilities: 0x10008fe1, // MPS 256, extended tag, L0s/L1 unlimited, role-based errors, FLR
        deviceControl: 0x2810,
        linkCapabilities: 0x00070841, // 2.5 GT/s, x4, ASPM L1, L1 exit < 64 us, clock PM
        linkStatus: 0x1041, // 2.5 GT/s, x4, slot clock
      },
      { kind: "msi", offset: 0x80, vectors: 8, is64Bit: true, perVectorMask: true },
    ],
    extendedCapabilities: [],
  };
}
