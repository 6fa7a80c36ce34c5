// This package's guest drivers (test/guest/*.c), built with guest-kit as ELF images entered in 64-bit mode,
// and the Machine that runs one with virtio functions on its PCI bus and collects what it prints on COM1.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { MemoryLogger, Tokens } from "@vmm/core";
import { buildGuest } from "@vmm/guest-kit";
import { Machine, type MachineResult } from "@vmm/machine";
import { VirtioPciFunction, type TransportKind, type VirtioPciOptions } from "../src/transport/virtio-pci.js";

const here = dirname(fileURLToPath(import.meta.url));

export function buildVirtioGuest(name: string): Promise<string> {
  return buildGuest(name, { format: "elf", source: join(here, "guest", `${name}.c`) });
}

/** A 64 MiB machine booting the guest ELF at `elf`, its serial output collected in `serial`. */
export class VirtioGuestVm {
  readonly machine: Machine;
  private text = "";

  constructor(elf: string, options: { name?: string; logger?: MemoryLogger } = {}) {
    this.machine = new Machine({
      ...(options.name === undefined ? {} : { name: options.name }),
      memoryMiB: 64,
      logger: options.logger ?? new MemoryLogger(),
      kernel: { kind: "elf", path: elf },
      serial: { output: (b) => void (this.text += Buffer.from(b).toString("latin1")) },
    });
  }

  /** Everything the guest has printed on COM1 so far. */
  get serial(): string {
    return this.text;
  }

  /** Puts `device` on the machine's PCI bus behind a virtio-pci function (modern unless told otherwise). */
  addVirtio(name: string, device: VirtioPciOptions["device"], transport?: TransportKind): VirtioPciFunction {
    const c = this.machine.container;
    const fn = new VirtioPciFunction({
      name,
      device,
      ...(transport === undefined ? {} : { transport }),
      memory: c.resolve(Tokens.GuestMemory),
      ioevents: c.resolve(Tokens.IoEvents),
      logger: c.resolve(Tokens.Logger),
    });
    this.machine.addPciDevice(fn);
    return fn;
  }

  /** Runs the guest to its end (stopped after `timeoutMs`), then closes the machine and then `toClose`. */
  async run(timeoutMs: number, toClose: readonly VirtioPciFunction[]): Promise<MachineResult> {
    const timer = setTimeout(() => this.machine.stop("test timeout"), timeoutMs);
    try {
      return await this.machine.run();
    } finally {
      clearTimeout(timer);
      this.machine.close();
      for (const fn of toClose) await fn.close();
    }
  }
}
