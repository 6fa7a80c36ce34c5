import { swizzle } from "@vmm/pci";
import { I8042_KEYBOARD_IRQ, I8042_PORTS } from "../../devices/i8042.js";
import { COM1 } from "../../devices/uart16550.js";
import { PCI_INTX_GSIS } from "../../services/pci.js";
import { Layout } from "../../x86_64/memory-map.js";
import type { PlatformDescription } from "../platform.js";
import type { DsdtDescription } from "./dsdt.js";

/** PCI's legacy configuration mechanism: address port 0xCF8 and data ports 0xCFC-0xCFF. */
const CONFIG_PORTS = { base: 0xcf8, size: 8 } as const;
/** Bus 0's device numbers other than the host bridge's (00:00.0, no interrupt). */
const PCI_SLOTS = Array.from({ length: 31 }, (_, i) => i + 1);

/**
 * The x86_64 machine's DSDT contents, from the same sources the devices use: the PCI windows of the memory map,
 * the MCFG's ECAM range, the bus's INTx swizzle over its GSIs, the COM1 and i8042 ports and IRQs, and the S5
 * sleep type of the ACPI fixed hardware when the platform has it.
 */
export function machineDsdtDescription(p: PlatformDescription): DsdtDescription {
  return {
    pci: {
      ecam: p.ecam,
      configPorts: CONFIG_PORTS,
      io: Layout.pciIo,
      mem32: p.pciMem32 ?? Layout.pciMem32,
      mem64: Layout.pciMem64,
      intxGsi: (device, pin) => swizzle(device, pin, PCI_INTX_GSIS),
      intxDevices: PCI_SLOTS,
    },
    isa: [
      { path: "COM1", hid: "PNP0501", ports: [{ base: COM1.port, size: 8 }], irq: COM1.irq },
      {
        path: "KBD",
        hid: "PNP0303",
        ports: [
          { base: I8042_PORTS.data, size: 1 },
          { base: I8042_PORTS.command, size: 1 },
        ],
        irq: I8042_KEYBOARD_IRQ,
      },
    ],
    s5SleepType: p.acpiPm?.s5SleepType,
  };
}
