// What guest-blk.mjs and guest-rng.mjs share: the KVM gate, building their guest driver, and one case of it on a
// fresh Machine with one virtio device, timed from the guest's "start" line to its "done" line.
import "reflect-metadata";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { recordSkip } from "@vmm/bench-kit";
import { buildGuest } from "@vmm/guest-kit";
import { kvmAvailability } from "@vmm/kvm-native";
import { VirtioPciFunction } from "../dist/index.js";
import { runGuestMachine } from "./guest-machine.mjs";

const here = dirname(fileURLToPath(import.meta.url));
/** The guests' "done <a> <b> <waiting ticks> <total ticks>" line. */
const DONE = /done (\d+) (\d+) (\d+) (\d+)\n/;

/** Records the bench `name` as skipped and exits when /dev/kvm cannot run guests. */
export function exitUnlessKvm({ name, title, what }) {
  const kvm = kvmAvailability();
  if (kvm.ok) return;
  console.log(`${what} guest bench SKIPPED: ${kvm.reason}`);
  recordSkip({ package: "@vmm/device-virtio", name, title, reason: kvm.reason });
  process.exit(0);
}

/** Builds (or takes from guest-kit's cache) the guest driver bench/guest/<program>.c as an ELF. */
export function buildBenchGuest(program) {
  return buildGuest(program, { format: "elf", source: join(here, "guest", `${program}.c`) });
}

/**
 * Boots `elf` on a fresh 64 MiB machine with `device` on a virtio-pci function `name` (doorbells through the
 * machine's ioevent registry, or through `ioevents(machine)`), sends `command` (then "q") once the guest printed
 * "ready", and resolves when it exited with the function, the "done" line's four numbers and the host's seconds
 * from "start" to "done" (both lines are written synchronously from the vCPU's exits). A guest that failed or
 * printed no "done" line throws with its output and the machine's log.
 */
export async function runGuestCase(elf, command, { name, device, ioevents }) {
  let started = 0n;
  let ended = 0n;
  const onOutput = (text, now) => {
    if (!started && text.includes("start\n")) started = now;
    if (!ended && DONE.test(text)) ended = now;
  };
  const { result, text, fn, log } = await runGuestMachine({ elf, command, PciFunction: VirtioPciFunction, name, device, ioevents, onOutput });
  const m = DONE.exec(text);
  if (result.status !== 0 || !m) throw new Error(`guest: ${result.reason} ${result.message ?? ""}\n${text}\n${log.join("\n")}`);
  return { fn, done: m.slice(1).map(Number), seconds: Number(ended - started) / 1e9 };
}

/**
 * A timed case's time outside the guest per request, in microseconds: the guest's TSC ticks waiting for the
 * device, as a share of the case's ticks, applied to the host's wall time.
 */
export function outsideMicros({ done: [, , waiting, total], seconds }, requests) {
  return ((seconds * waiting) / total / requests) * 1e6;
}
