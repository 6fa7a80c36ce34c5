// One run of a bench guest driver on a fresh machine with one virtio device: what the benches (guest-case.mjs, on
// the built package) and the KVM tests that keep their guests from rotting (test/bench-guest.ts, on the sources)
// share. The virtio-pci function class comes from the caller, so each side runs its own build of the transport.
import { PassThrough } from "node:stream";
import { MemoryLogger, Tokens } from "@vmm/core";
import { Machine } from "@vmm/machine";

/**
 * Boots `elf` on a fresh 64 MiB machine with `device` on a `PciFunction` named `name` (doorbells through the
 * machine's ioevent registry, or through `ioevents(machine)`), sends `command` (then "q") once the guest printed
 * "ready", and resolves when it exited (stopped after 60 s) with its result, what it printed, the function, what
 * `look(machine)` returned while the machine still existed, and the machine's log. `onOutput(text, now)` sees the
 * output each time it grows, with the host's time of that write.
 */
export async function runGuestMachine({ elf, command, PciFunction, name, device, ioevents, onOutput, look }) {
  const input = new PassThrough();
  const logger = new MemoryLogger();
  let text = "";
  const machine = new Machine({
    memoryMiB: 64,
    logger,
    kernel: { kind: "elf", path: elf },
    serial: {
      input,
      output: (bytes) => {
        const now = process.hrtime.bigint();
        const asked = text.includes("ready");
        text += Buffer.from(bytes).toString("latin1");
        // Commands go after "ready": bytes sent before the guest set up COM1 would be lost.
        if (!asked && text.includes("ready")) input.write(`${command}\nq\n`);
        onOutput?.(text, now);
      },
    },
  });
  const c = machine.container;
  const fn = new PciFunction({
    name,
    device,
    memory: c.resolve(Tokens.GuestMemory),
    ioevents: ioevents?.(machine) ?? c.resolve(Tokens.IoEvents),
    logger: c.resolve(Tokens.Logger),
  });
  machine.addPciDevice(fn);
  const timer = setTimeout(() => machine.stop(`${name}: the guest ran for over 60 s`), 60_000);
  try {
    const result = await machine.run();
    return { result, text, fn, seen: look?.(machine), log: logger.lines };
  } finally {
    clearTimeout(timer);
    machine.close();
    await fn.close();
  }
}
