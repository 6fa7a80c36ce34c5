import { dtcRoundTrip as roundTrip, type DtcRoundTrip } from "@vmm/test-support";

/**
 * Decompiled source has phandles as numbers; dtc's msi-parent check (1.6) wants a reference there ("cell 0 is not
 * a phandle reference"), as a hand-written source would have. Give each node with a phandle a label and write
 * msi-parent with it, so the source compiles back as the original would.
 */
function labelMsiParents(dts: string): string {
  const labelled = dts.replace(/^(\s*)([^\s{}]+) \{\n(\s*)phandle = <(0x[0-9a-f]+)>;/gm, (_m, indent, name, inner, ph) => `${indent}ph${Number(ph)}: ${name} {\n${inner}phandle = <${ph}>;`);
  return labelled.replace(/msi-parent = <(0x[0-9a-f]+)>;/g, (_m, ph) => `msi-parent = <&ph${Number(ph)}>;`);
}

/** dtb -> dts -> dtb through dtc (test-support's), with msi-parent written as a reference; throws when dtc fails. */
export function dtcRoundTrip(dtb: Uint8Array): DtcRoundTrip {
  return roundTrip(dtb, { rewriteSource: labelMsiParents });
}
