import type { AddressSpace, GuestMemory, Registration } from "@vmm/core";
import type { PlatformDescription } from "../../firmware/platform.js";
import { E820Type, Layout, type E820Entry } from "../../x86_64/memory-map.js";
import { AcpiFiles, buildAcpiBlobs } from "./acpi-loader.js";
import { FW_CFG_PORTS, FwCfg, FwCfgKey } from "./fw-cfg.js";

export * from "./fw-cfg.js";
export * from "./acpi-loader.js";

export interface FwCfgSetup {
  readonly memory: GuestMemory;
  readonly pio: AddressSpace;
  readonly cpus: number;
  /** Guest RAM in bytes (the legacy RAM size item). */
  readonly ramBytes: number;
  /** The memory map; etc/e820 is made from it (firmwareE820). */
  readonly e820: readonly E820Entry[];
  /** What the ACPI tables describe, read when firmware fetches them (after it placed ECAM). */
  readonly platform: () => PlatformDescription;
  /** Whether ECAM decodes now (no MCFG when firmware disabled it). */
  readonly ecamEnabled: () => boolean;
  /** OpenFirmware device paths in boot order (the "bootorder" file), when any. */
  readonly bootOrder?: () => readonly string[];
}

/** etc/e820: 20-byte little-endian records (address, length, type). */
export function e820File(entries: readonly E820Entry[]): Uint8Array {
  const out = new Uint8Array(entries.length * 20);
  const v = new DataView(out.buffer);
  entries.forEach((e, i) => {
    v.setBigUint64(i * 20, BigInt(e.addr), true);
    v.setBigUint64(i * 20 + 8, BigInt(e.size), true);
    v.setUint32(i * 20 + 16, e.type, true);
  });
  return out;
}

/**
 * The etc/e820 QEMU gives firmware: RAM below 4 GiB as one entry from 0 (firmware reserves the EBDA, the VGA hole
 * and its own areas itself, and adds ECAM where it puts it), RAM above 4 GiB, and the pages KVM keeps for its TSS
 * and identity map (QEMU reserves its own at 0xFEFFC000 the same way).
 */
export function firmwareE820(map: readonly E820Entry[]): E820Entry[] {
  const ram = map.filter((e) => e.type === E820Type.ram);
  const lowTop = Math.max(...ram.filter((e) => e.addr < Layout.fourGiB).map((e) => e.addr + e.size));
  return [
    { addr: 0, size: lowTop, type: E820Type.ram },
    ...map.filter((e) => e.type === E820Type.reserved && e.addr === Layout.kvmIdentityMap),
    ...ram.filter((e) => e.addr >= Layout.fourGiB),
  ];
}

/**
 * fw_cfg for a firmware boot, on ports 0x510 (selector), 0x511 (data) and 0x514 (DMA): signature and ID (with
 * DMA), CPU count, RAM size, no boot menu, etc/e820 (firmwareE820), the machine's ACPI tables through
 * etc/table-loader, etc/acpi/tables and etc/acpi/rsdp (built when firmware reads them), and bootorder.
 */
export function installFwCfg(o: FwCfgSetup): { fwCfg: FwCfg; registrations: Registration[] } {
  const fwCfg = new FwCfg(o.memory);
  fwCfg.setU16(FwCfgKey.cpuCount, o.cpus);
  fwCfg.setU16(FwCfgKey.maxCpus, o.cpus);
  fwCfg.setU64(FwCfgKey.ramSize, o.ramBytes);
  fwCfg.setU16(FwCfgKey.bootMenu, 0);
  fwCfg.setU16(FwCfgKey.noGraphic, 0);
  fwCfg.addFile("etc/e820", e820File(firmwareE820(o.e820)));
  const acpi = () => buildAcpiBlobs(o.platform(), o.ecamEnabled());
  fwCfg.addFile(AcpiFiles.rsdp, () => acpi().rsdp);
  fwCfg.addFile(AcpiFiles.tables, () => acpi().tables);
  fwCfg.addFile(AcpiFiles.loader, () => acpi().loader);
  if (o.bootOrder) {
    const order = o.bootOrder;
    // As QEMU writes it: paths joined by newlines, NUL-terminated; empty (SeaBIOS then ignores it) without any.
    fwCfg.addFile("bootorder", () => {
      const paths = order();
      return paths.length ? new TextEncoder().encode(paths.join("\n") + "\0") : new Uint8Array(0);
    });
  }
  const registrations = [
    o.pio.register(FW_CFG_PORTS.selector, 1, "fw_cfg selector", fwCfg.selectorHandler),
    o.pio.register(FW_CFG_PORTS.data, 1, "fw_cfg data", fwCfg.dataHandler),
    o.pio.register(FW_CFG_PORTS.dma, 8, "fw_cfg dma", fwCfg.dmaHandler),
  ];
  return { fwCfg, registrations };
}
