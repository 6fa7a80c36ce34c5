import { LineBuffer } from "./line-buffer.js";
import type { Uart16550 } from "./uart16550.js";

// The serial console as every machine family wires it to the host: the guest's bytes to a function or a stream,
// host input fed to the UART while a run lasts.

/** Host input and where the guest's output goes (a machine's `serial` option). */
export interface ConsoleStreams {
  readonly input?: NodeJS.ReadableStream;
  readonly output?: NodeJS.WritableStream | ((bytes: Uint8Array) => void);
}

/** Where the UART's bytes go: a function gets each byte as it is sent; a stream (default stdout) whole lines. */
export function consoleOutput(output: ConsoleStreams["output"]): { write: (bytes: Uint8Array) => void; flush: () => void } {
  if (typeof output === "function") return { write: output, flush: () => {} };
  const stream = output ?? process.stdout;
  const lines = new LineBuffer((b) => void stream.write(b));
  return { write: lines.push, flush: lines.flush };
}

/**
 * Feeds host input to the UART for one run: `serial.input` when given, else stdin unless the guest's console is
 * virtio (which reads stdin itself). Returns the function that stops it; stdin is paused again then, so that it
 * does not keep the process alive.
 */
export function feedConsoleInput(uart: Uart16550, serial: ConsoleStreams | undefined, console: "serial" | "virtio" | undefined): () => void {
  const stdin = !serial && console !== "virtio" ? process.stdin : undefined;
  const input = serial ? serial.input : stdin;
  const onData = (chunk: Buffer | string) => uart.input(typeof chunk === "string" ? Buffer.from(chunk) : chunk);
  input?.on("data", onData);
  return () => {
    input?.off("data", onData);
    stdin?.pause();
  };
}
