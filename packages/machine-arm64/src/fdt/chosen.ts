import type { FdtNodeBuilder } from "@vmm/fdt";
import type { AddressRange } from "../ranges.js";
import { UART_NODE } from "./uart.js";

// /chosen (the kernel command line, the console, the initrd) and /aliases (the UART is serial0, so ttyS0).

export interface ChosenOptions {
  readonly bootargs?: string;
  readonly initrd?: AddressRange;
}

export function addChosen(root: FdtNodeBuilder, options: ChosenOptions): void {
  root.node("chosen", (n) => {
    if (options.bootargs !== undefined) n.string("bootargs", options.bootargs);
    n.string("stdout-path", `/${UART_NODE}`);
    if (options.initrd) {
      n.u64("linux,initrd-start", options.initrd.base).u64("linux,initrd-end", options.initrd.base + options.initrd.size);
    }
  });
  root.node("aliases", (n) => n.string("serial0", `/${UART_NODE}`));
}
