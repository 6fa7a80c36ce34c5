import { Uart16550, LineBuffer } from "@vmm/machine";
import type { InterruptLine } from "@vmm/core";

// The console: core/machine's 16550 model, its bytes to a function (each byte) or a stream (a line per write),
// host input queued for the guest while the machine runs.

export interface SerialOptions {
  /** Host input (default stdin unless the console is virtio). */
  readonly input?: NodeJS.ReadableStream;
  /** Where the guest's output goes (default stdout). */
  readonly output?: NodeJS.WritableStream | ((bytes: Uint8Array) => void);
}

export interface Serial {
  readonly uart: Uart16550;
  /** Writes what the line buffer still holds. */
  flush(): void;
}

/** The UART raising `irq`, writing to `output`. */
export function createSerial(output: SerialOptions["output"], irq: InterruptLine): Serial {
  if (typeof output === "function") return { uart: new Uart16550({ output, irq }), flush: () => {} };
  const stream = output ?? process.stdout;
  const lines = new LineBuffer((bytes) => void stream.write(bytes));
  return { uart: new Uart16550({ output: lines.push, irq }), flush: lines.flush };
}
