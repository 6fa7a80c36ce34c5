import { MemoryLogger, type PciDevice } from "@vmm/core";
import type { GuestFormat } from "@vmm/guest-kit";
import { kvmAvailability } from "@vmm/kvm-native";
import type { Machine, StopReason } from "@vmm/machine";
import type { PciPlacement } from "@vmm/pci";
import { basename } from "node:path";

/** Whether guest programs can run here: /dev/kvm usable and the KVM addon loaded, or the reason why not. */
export function kvmAvailable(): { ok: true } | { ok: false; reason: string } {
  return kvmAvailability();
}

export interface GuestProgramOptions {
  /** A guest-kit C program (absolute path to a .c file), built with guest-kit's buildGuest. */
  readonly source?: string;
  /** Or a ready-built guest image (ELF64 entered at 1 MiB in 64-bit mode, or raw with `format: "raw"`). */
  readonly elf?: string;
  /** How the program is built and loaded (default "elf"). */
  readonly format?: GuestFormat;
  /** Names the build and the machine (default: the source's file name). */
  readonly name?: string;
  /** The devices to put on the machine's PCI bus; a `[device, placement]` pair places one (behind a bridge, as PCI Express). */
  readonly devices?: (machine: Machine) => ReadonlyArray<PciDevice | readonly [PciDevice, PciPlacement]>;
  /** Guest RAM (default 64 MiB). */
  readonly memoryMiB?: number;
  /** The machine is stopped (reason "stopped", `timedOut` true) when the program runs longer (default 60 s). */
  readonly timeoutMs?: number;
}

export interface GuestProgramResult {
  /** The exit status the program gave (guest-kit's exit through the debug-exit port); 0 = success. */
  readonly status: number;
  readonly reason: StopReason;
  /** Why the machine stopped, where it says (an error, the timeout). */
  readonly message?: string;
  /** Everything the program wrote to COM1. */
  readonly serial: string;
  readonly timedOut: boolean;
  /** What the machine and the devices logged. */
  readonly logger: MemoryLogger;
}

/**
 * Builds a guest-kit program (or takes a built image), runs it on a fresh @vmm/machine under /dev/kvm with
 * `devices` on the PCI bus, and collects COM1. Throws when KVM is unavailable (check `kvmAvailable()` first
 * and skip loudly) or the program does not build.
 */
export async function runGuestProgram(options: GuestProgramOptions): Promise<GuestProgramResult> {
  if (!options.source === !options.elf) throw new Error("runGuestProgram: give exactly one of source (a .c file) and elf (a built image)");
  const kvm = kvmAvailable();
  if (!kvm.ok) throw new Error(`runGuestProgram: KVM is not available: ${kvm.reason}`);
  const format = options.format ?? "elf";
  const name = options.name ?? basename(options.source ?? options.elf!).replace(/\.[^.]*$/, "");
  // Loaded here, not at import: checkPlugin and checkDevice work where the machine cannot.
  const [{ buildGuest }, { Machine }] = await Promise.all([import("@vmm/guest-kit"), import("@vmm/machine")]);
  const path = options.source ? await buildGuest(name, { format, source: options.source }) : options.elf!;
  const logger = new MemoryLogger();
  let serial = "";
  const machine = new Machine({
    name,
    memoryMiB: options.memoryMiB ?? 64,
    logger,
    kernel: { kind: format, path },
    serial: { output: (bytes) => void (serial += Buffer.from(bytes).toString("latin1")) },
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    machine.stop(`the guest program ran longer than ${options.timeoutMs ?? 60_000} ms`);
  }, options.timeoutMs ?? 60_000);
  try {
    for (const entry of options.devices?.(machine) ?? []) {
      if (Array.isArray(entry)) machine.addPciDevice(entry[0] as PciDevice, entry[1] as PciPlacement);
      else machine.addPciDevice(entry as PciDevice);
    }
    const result = await machine.run();
    return { status: result.status, reason: result.reason, ...(result.message ? { message: result.message } : {}), serial, timedOut, logger };
  } finally {
    clearTimeout(timer);
    machine.close();
  }
}
