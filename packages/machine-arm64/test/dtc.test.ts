import { nodesEqual, readDtb } from "@vmm/fdt";
import { hostToolAvailable } from "@vmm/test-support";
import { describe, expect, it } from "vitest";
import { describeArm64Machine, type GicVersion } from "../src/index.js";
import { image } from "./images.js";
import { dtcRoundTrip } from "./dtc.js";

// dtc (Debian's device-tree-compiler) runs its own checks on the machine's DTB (interrupt providers and maps, PCI
// bridge nodes, reg and ranges formats, unit addresses, phandle references) and must have nothing to say.

const HAVE_DTC = hostToolAvailable("dtc");
if (!HAVE_DTC) console.warn("SKIP the arm64 DTB's dtc round trips: dtc is missing (Debian package device-tree-compiler)");

describe.skipIf(!HAVE_DTC)("the arm64 DTB through dtc (dtb -> dts -> dtb)", () => {
  it.each([
    ["GICv3, 4 vCPUs, kernel and initrd", "v3", 4, true],
    ["GICv3, 1 vCPU, no kernel (--dump-dtb alone)", "v3", 1, false],
    ["GICv2, 8 vCPUs, kernel and initrd", "v2", 8, true],
    ["GICv3, 300 vCPUs", "v3", 300, false],
  ] as const)("%s: no warnings, the same tree back", (_what, gic: GicVersion, cpus, withKernel) => {
    const m = describeArm64Machine({
      ramSize: 2 ** 30,
      cpus,
      gic,
      cmdline: "console=ttyS0 root=/dev/vda",
      ...(withKernel ? { kernel: image({ imageSize: 0x20_0000 }), initrd: new Uint8Array(4096) } : {}),
    });
    const back = dtcRoundTrip(m.dtb);
    expect(back.warnings).toBe("");
    expect(back.dts).toContain('compatible = "pci-host-ecam-generic";');
    expect(back.dts).not.toContain("linux,pci-probe-only");
    expect(nodesEqual(readDtb(back.dtb).root, readDtb(m.dtb).root)).toBe(true);
  });
});
