import { beginSdt, finishSdt } from "./sdt.js";

/**
 * A DSDT with an empty definition block: the namespace is valid but declares no devices, because this machine's
 * devices are found by PCI enumeration (through MCFG/ECAM or CF8/CFC) and legacy probing.
 */
export function buildDsdt(): Uint8Array {
  return finishSdt(beginSdt("DSDT", 2));
}
