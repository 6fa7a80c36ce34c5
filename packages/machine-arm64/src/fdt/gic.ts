import type { FdtNodeBuilder } from "@vmm/fdt";
import type { GicLayout } from "../gic.js";
import { Arm64Spis, GIC_SPI_BASE } from "../layout.js";

// The interrupt controller node (phandle "gic") and its MSI controller child (phandle "msi"): arm,gic-v3 with an
// arm,gic-v3-its, or arm,cortex-a15-gic with an arm,gic-v2m-frame. The GIC node has #address-cells so it can be an
// interrupt-map parent and hold its child's reg (with an identity ranges).

export const GIC_PHANDLE = "gic";
export const MSI_PHANDLE = "msi";

export function addGic(root: FdtNodeBuilder, gic: GicLayout): void {
  root.node(`interrupt-controller@${gic.distributor.base.toString(16)}`, (n) => {
    n.phandle(GIC_PHANDLE)
      .strings("compatible", [gic.version === "v3" ? "arm,gic-v3" : "arm,cortex-a15-gic"])
      .u32("#interrupt-cells", 3)
      .empty("interrupt-controller")
      .u32("#address-cells", 2)
      .u32("#size-cells", 2)
      .ranges([]);
    if (gic.version === "v3") {
      n.reg([gic.distributor, gic.redistributors!].map((r) => ({ address: r.base, size: r.size })));
      const its = gic.its!;
      n.node(`msi-controller@${its.base.toString(16)}`, (c) =>
        c.phandle(MSI_PHANDLE).string("compatible", "arm,gic-v3-its").empty("msi-controller").u32("#msi-cells", 1).reg([{ address: its.base, size: its.size }]),
      );
    } else {
      n.reg([gic.distributor, gic.cpuInterface!].map((r) => ({ address: r.base, size: r.size })));
      const v2m = gic.v2m!;
      n.node(`msi-controller@${v2m.base.toString(16)}`, (c) =>
        c
          .phandle(MSI_PHANDLE)
          .string("compatible", "arm,gic-v2m-frame")
          .empty("msi-controller")
          .reg([{ address: v2m.base, size: v2m.size }])
          // The frame's MSI_TYPER says the same; stating it spares the guest a VMM that gets it wrong.
          .u32("arm,msi-base-spi", GIC_SPI_BASE + Arm64Spis.v2mMsi.first)
          .u32("arm,msi-num-spis", Arm64Spis.v2mMsi.count),
      );
    }
  });
}
