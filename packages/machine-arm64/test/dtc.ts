import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** What dtc (Debian's device-tree-compiler) makes of a DTB: its DTS, and that DTS compiled back, with dtc's stderr. */
export interface DtcRoundTrip {
  readonly dts: string;
  readonly dtb: Uint8Array;
  /** Everything dtc printed on stderr in both directions (warnings); empty when it had nothing to say. */
  readonly warnings: string;
}

/**
 * Decompiled source has phandles as numbers; dtc's msi-parent check (1.6) wants a reference there ("cell 0 is not
 * a phandle reference"), as a hand-written source would have. Give each node with a phandle a label and write
 * msi-parent with it, so the source compiles back as the original would.
 */
function labelMsiParents(dts: string): string {
  const labelled = dts.replace(/^(\s*)([^\s{}]+) \{\n(\s*)phandle = <(0x[0-9a-f]+)>;/gm, (_m, indent, name, inner, ph) => `${indent}ph${Number(ph)}: ${name} {\n${inner}phandle = <${ph}>;`);
  return labelled.replace(/msi-parent = <(0x[0-9a-f]+)>;/g, (_m, ph) => `msi-parent = <&ph${Number(ph)}>;`);
}

/** dtb -> dts -> dtb through dtc; throws when dtc fails. */
export function dtcRoundTrip(dtb: Uint8Array): DtcRoundTrip {
  const dir = mkdtempSync(join(tmpdir(), "arm64-dtc-"));
  try {
    writeFileSync(join(dir, "in.dtb"), dtb);
    const run = (args: string[]) => {
      const r = spawnSync("dtc", args, { encoding: "utf8" });
      if (r.status !== 0) throw new Error(`dtc ${args.join(" ")} failed (${r.status}): ${r.stderr}`);
      return r.stderr;
    };
    const w1 = run(["-I", "dtb", "-O", "dts", "-o", join(dir, "out.dts"), join(dir, "in.dtb")]);
    const dts = readFileSync(join(dir, "out.dts"), "utf8");
    writeFileSync(join(dir, "labelled.dts"), labelMsiParents(dts));
    const w2 = run(["-I", "dts", "-O", "dtb", "-o", join(dir, "back.dtb"), join(dir, "labelled.dts")]);
    return { dts, dtb: new Uint8Array(readFileSync(join(dir, "back.dtb"))), warnings: w1 + w2 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
