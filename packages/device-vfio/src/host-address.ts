import { ConfigurationError, type PciAddress } from "@vmm/core";

/** Parses a host PCI address as sysfs and lspci write it: "0000:01:00.0" or "01:00.0" (segment 0). */
export function parseHostAddress(text: string): PciAddress {
  const m = /^(?:([0-9a-f]{4}):)?([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/i.exec(text.trim());
  const device = m ? parseInt(m[3]!, 16) : 32;
  if (!m || device > 31) {
    throw new ConfigurationError(`'${text}' is not a host PCI address (expected DDDD:BB:DD.F, e.g. 0000:01:00.0)`);
  }
  return { segment: parseInt(m[1] ?? "0", 16), bus: parseInt(m[2]!, 16), device, function: parseInt(m[4]!, 10) };
}

/** The sysfs spelling of an address: 0000:01:00.0. */
export function formatHostAddress(a: PciAddress): string {
  const hex = (n: number, w: number) => n.toString(16).padStart(w, "0");
  return `${hex(a.segment, 4)}:${hex(a.bus, 2)}:${hex(a.device, 2)}.${a.function}`;
}
