// Debian's device-tree-compiler (dtc) as the independent judge of a DTB: decompiled to source and compiled back.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** What dtc makes of a DTB: its DTS, and that DTS compiled back, with dtc's stderr. */
export interface DtcRoundTrip {
  readonly dts: string;
  readonly dtb: Uint8Array;
  /** Everything dtc printed on stderr in both directions (warnings); empty when it had nothing to say. */
  readonly warnings: string;
}

export interface DtcRoundTripOptions {
  /** Rewrites the decompiled source before it is compiled back (e.g. labels where dtc wants references). */
  readonly rewriteSource?: (dts: string) => string;
}

/** dtb -> dts -> dtb through dtc; throws when dtc fails. */
export function dtcRoundTrip(dtb: Uint8Array, options: DtcRoundTripOptions = {}): DtcRoundTrip {
  const dir = mkdtempSync(join(tmpdir(), "vmm-dtc-"));
  try {
    writeFileSync(join(dir, "in.dtb"), dtb);
    const run = (args: string[]) => {
      const r = spawnSync("dtc", args, { encoding: "utf8" });
      if (r.status !== 0) throw new Error(`dtc ${args.join(" ")} failed (${r.status}): ${r.stderr}`);
      return r.stderr;
    };
    const w1 = run(["-I", "dtb", "-O", "dts", "-o", join(dir, "out.dts"), join(dir, "in.dtb")]);
    const dts = readFileSync(join(dir, "out.dts"), "utf8");
    writeFileSync(join(dir, "source.dts"), options.rewriteSource ? options.rewriteSource(dts) : dts);
    const w2 = run(["-I", "dts", "-O", "dtb", "-o", join(dir, "back.dtb"), join(dir, "source.dts")]);
    return { dts, dtb: new Uint8Array(readFileSync(join(dir, "back.dtb"))), warnings: w1 + w2 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
