import { FdtBuilder, writeDtb, type Devicetree } from "@vmm/fdt";
import type { Arm64MemoryMap } from "../memory-map.js";
import type { AddressRange } from "../ranges.js";
import { addChosen } from "./chosen.js";
import { addCpus, cpuMpidr } from "./cpus.js";
import { addGic, GIC_PHANDLE } from "./gic.js";
import { ppiCpuMask } from "./interrupts.js";
import { addMemory } from "./memory.js";
import { addPcie } from "./pcie.js";
import { addPsci } from "./psci.js";
import { addTimer } from "./timer.js";
import { addUart } from "./uart.js";

// The whole devicetree of the machine, node by node (each device's node in its own module).

export interface Arm64FdtOptions {
  readonly map: Arm64MemoryMap;
  readonly cpus: number;
  readonly bootargs?: string;
  /** Where the initrd was placed, for /chosen. */
  readonly initrd?: AddressRange;
}

export function buildArm64Devicetree(o: Arm64FdtOptions): Devicetree {
  const gic = o.map.gic;
  return new FdtBuilder()
    .root((r) => {
      r.u32("#address-cells", 2)
        .u32("#size-cells", 2)
        .string("compatible", "linux,dummy-virt")
        .string("model", "vmm arm64 virtual machine")
        .u32("interrupt-parent", r.ref(GIC_PHANDLE));
      addChosen(r, { bootargs: o.bootargs, initrd: o.initrd });
      addCpus(r, o.cpus);
      addPsci(r);
      addMemory(r, o.map.ram);
      addGic(r, gic);
      addTimer(r, ppiCpuMask(gic.version, o.cpus));
      addUart(r);
      addPcie(r, o.map.pci, gic.version);
    })
    .build({ bootCpuId: cpuMpidr(0) });
}

/** The devicetree as DTB bytes. */
export function buildArm64Dtb(o: Arm64FdtOptions): Uint8Array {
  return writeDtb(buildArm64Devicetree(o));
}
