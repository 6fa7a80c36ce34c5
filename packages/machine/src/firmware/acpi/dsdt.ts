import type { PlatformDescription } from "../platform.js";
import { concat, device, eisaId, integer, name, packageOf, scope, string, aPackage, type Aml } from "./aml.js";
import { dwordAddressSpace, ioPorts, isaIrqs, memory32Fixed, qwordAddressSpace, resourceTemplate, wordAddressSpace } from "./aml-resources.js";
import { beginSdt, finishSdt } from "./sdt.js";

export interface DsdtWindow {
  readonly base: number;
  readonly size: number;
}

/** What the DSDT says about the PCI host bridge: the resources it decodes and how INTx pins reach GSIs. */
export interface PciRootDescription {
  /** The ECAM window (the bus range is the MCFG's; the window is reserved by a motherboard-resources device). */
  readonly ecam: PlatformDescription["ecam"];
  /** The legacy configuration mechanism's ports (CF8-CFF). */
  readonly configPorts: DsdtWindow;
  /** Where the bus places I/O BARs. */
  readonly io: DsdtWindow;
  /** Where the bus places 32-bit memory BARs. */
  readonly mem32: DsdtWindow;
  /** Where the bus places 64-bit memory BARs (absent: none). */
  readonly mem64?: DsdtWindow;
  /** The GSI a bus-0 device's INTx pin (1-4 = INTA-INTD) is wired to. */
  readonly intxGsi: (device: number, pin: number) => number;
  /** Device numbers that get _PRT entries (the host bridge at device 0 has no interrupt). */
  readonly intxDevices: readonly number[];
}

/** An ISA device declared for ACPI-only guests: its EISA ID, fixed I/O ports and ISA IRQ. */
export interface IsaDeviceDescription {
  readonly path: string;
  readonly hid: string;
  readonly ports: readonly DsdtWindow[];
  readonly irq: number;
}

export interface DsdtDescription {
  readonly pci: PciRootDescription;
  readonly isa: readonly IsaDeviceDescription[];
  /** The SLP_TYP value that enters S5 (soft off), declared as `\_S5`; absent: no sleep states. */
  readonly s5SleepType?: number;
}

/** One _PRT entry per device (every function of a device shares its routing) and pin. */
export interface PrtEntry {
  readonly device: number;
  /** 0-3 = INTA-INTD, as _PRT numbers them. */
  readonly pin: number;
  readonly gsi: number;
}

const lastOf = (w: DsdtWindow) => w.base + w.size - 1;
const ecamBusCount = (e: PciRootDescription["ecam"]) => e.endBus - e.startBus + 1;
/** ECAM gives each bus 1 MiB (32 devices x 8 functions x 4 KiB). */
const ECAM_BYTES_PER_BUS = 1 << 20;

export function prtEntries(pci: PciRootDescription): PrtEntry[] {
  return pci.intxDevices.flatMap((dev) => [0, 1, 2, 3].map((pin) => ({ device: dev, pin, gsi: pci.intxGsi(dev, pin + 1) })));
}

/** _CRS of the root bridge: bus numbers, the config ports, then the I/O, 32-bit and 64-bit BAR windows. */
function rootBridgeResources(pci: PciRootDescription): Aml {
  const windows = [
    wordAddressSpace({ type: "busNumber", min: pci.ecam.startBus, max: pci.ecam.endBus }),
    ioPorts(pci.configPorts.base, pci.configPorts.size),
    wordAddressSpace({ type: "io", min: pci.io.base, max: lastOf(pci.io) }),
    dwordAddressSpace({ type: "memory", caching: "nonCacheable", min: pci.mem32.base, max: lastOf(pci.mem32) }),
  ];
  // Not prefetchable: the bus places every 64-bit BAR here, and a guest must not find a non-prefetchable BAR in
  // a window declared prefetchable.
  if (pci.mem64 && pci.mem64.size > 0) {
    windows.push(qwordAddressSpace({ type: "memory", caching: "nonCacheable", min: pci.mem64.base, max: lastOf(pci.mem64) }));
  }
  return resourceTemplate(windows);
}

/** _PRT: Package { Package { 0xDDDDFFFF, pin, Zero (a GSI, not a link device), GSI }, ... }. */
function routingTable(pci: PciRootDescription): Aml {
  return packageOf(
    prtEntries(pci).map((e) => aPackage([integer(e.device * 0x10000 + 0xffff), integer(e.pin), integer(0), integer(e.gsi)])),
  );
}

/** The root bridge is named by _HID, so it has no _ADR (a device takes one or the other, never both). */
function pciRootBridge(pci: PciRootDescription): Aml {
  return device("PCI0", [
    name("_HID", eisaId("PNP0A08")), // PCI Express root bridge
    name("_CID", eisaId("PNP0A03")), // compatible: PCI root bridge
    name("_UID", integer(0)),
    name("_SEG", integer(pci.ecam.segment)),
    name("_BBN", integer(pci.ecam.startBus)),
    name("_CRS", rootBridgeResources(pci)),
    name("_PRT", routingTable(pci)),
  ]);
}

/** Motherboard resources: the ECAM window, which an OS checks is reserved before it trusts MCFG. */
function motherboardResources(pci: PciRootDescription): Aml {
  return device("MRES", [
    name("_HID", eisaId("PNP0C02")),
    name("_UID", string("MCFG")),
    name("_CRS", resourceTemplate([memory32Fixed(pci.ecam.base, ecamBusCount(pci.ecam) * ECAM_BYTES_PER_BUS)])),
  ]);
}

function isaDevice(d: IsaDeviceDescription): Aml {
  return device(d.path, [
    name("_HID", eisaId(d.hid)),
    name("_UID", integer(0)),
    name("_CRS", resourceTemplate([...d.ports.map((p) => ioPorts(p.base, p.size)), isaIrqs([d.irq])])),
  ]);
}

/**
 * `\_S5`: Package { SLP_TYPa, SLP_TYPb, reserved, reserved } (ACPI 6.5, 7.4.2). The OS writes SLP_TYPa with SLP_EN
 * into PM1a_CNT to power off; there is no PM1b block, so SLP_TYPb only repeats the value.
 */
function softOff(sleepType: number): Aml {
  return name("\\_S5", aPackage([integer(sleepType), integer(sleepType), integer(0), integer(0)]));
}

/**
 * The DSDT's definition block: \_SB.PCI0 (the PCI Express root bridge with its windows and INTx routing),
 * \_SB.MRES (the ECAM reservation) and the legacy ISA devices, so ACPI-only guests find PCI and the ports; then
 * `\_S5` when the machine can power off.
 */
export function dsdtDefinitions(d: DsdtDescription): Aml {
  const sb = scope("\\_SB", [pciRootBridge(d.pci), motherboardResources(d.pci), ...d.isa.map(isaDevice)]);
  return d.s5SleepType === undefined ? sb : concat(sb, softOff(d.s5SleepType));
}

/** DSDT revision 2: 64-bit integers. */
export function buildDsdt(d: DsdtDescription): Uint8Array {
  return finishSdt(beginSdt("DSDT", 2).bytes(concat(dsdtDefinitions(d))));
}
