import { consoleOutput, Uart16550, type ConsoleStreams } from "@vmm/machine";
import type { InterruptLine } from "@vmm/core";

// The console: the 16550 model @vmm/machine shares, on MMIO here, its bytes written as @vmm/machine's consoleOutput
// writes them (each byte to a function, whole lines to a stream).

/** Host input (default stdin unless the console is virtio) and where the guest's output goes (default stdout). */
export type SerialOptions = ConsoleStreams;

export interface Serial {
  readonly uart: Uart16550;
  /** Writes what the line buffer still holds. */
  flush(): void;
}

/** The UART raising `irq`, writing to `output`. */
export function createSerial(output: SerialOptions["output"], irq: InterruptLine): Serial {
  const sink = consoleOutput(output);
  return { uart: new Uart16550({ output: sink.write, irq }), flush: sink.flush };
}
