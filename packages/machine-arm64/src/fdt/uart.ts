import type { FdtNodeBuilder } from "@vmm/fdt";
import { Arm64Layout, Arm64Spis, UART_CLOCK_HZ } from "../layout.js";
import { spi } from "./interrupts.js";

// The 16550A UART (Linux's 8250 driver through of_serial): byte-wide registers, one SPI.

export const UART_NODE = `serial@${Arm64Layout.uart.base.toString(16)}`;

export function addUart(root: FdtNodeBuilder): void {
  root.node(UART_NODE, (n) =>
    n
      .string("compatible", "ns16550a")
      .reg([{ address: Arm64Layout.uart.base, size: Arm64Layout.uart.registers }])
      .u32("clock-frequency", UART_CLOCK_HZ)
      .cells("interrupts", spi(Arm64Spis.uart)),
  );
}
