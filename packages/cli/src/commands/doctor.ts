import { UsageError } from "../errors.js";
import type { CliContext } from "../context.js";
import { parseMemorySize } from "../options/size.js";

export interface RawDoctorOptions {
  mem?: string;
}

/** What `vmm doctor` checks. */
export const DOCTOR_TOPICS = ["vfio"] as const;

/**
 * `vmm doctor vfio [ADDRESS]`: what this host lacks for passing a PCI function through with kernel VFIO, one line
 * per check with the commands that fix a problem. Exits 0 when nothing is in the way, 1 otherwise.
 */
export async function doctorCommand(topic: string, address: string | undefined, raw: RawDoctorOptions, ctx: CliContext): Promise<number> {
  if (!(DOCTOR_TOPICS as readonly string[]).includes(topic)) throw new UsageError(`doctor: unknown topic '${topic}' (known: ${DOCTOR_TOPICS.join(", ")})`);
  const { diagnoseVfioHost, diagnosisLines, parseHostAddress } = await import("@vmm/device-vfio");
  if (address !== undefined) {
    try {
      parseHostAddress(address);
    } catch (error) {
      throw new UsageError(`doctor vfio: ${(error as Error).message}`);
    }
  }
  const guestRamBytes = raw.mem === undefined ? undefined : parseMemorySize(raw.mem);
  const diagnosis = diagnoseVfioHost({ address, guestRamBytes });
  for (const line of diagnosisLines(diagnosis)) ctx.stdout(`${line}\n`);
  const failing = diagnosis.checks.filter((c) => !c.ok).length;
  ctx.stdout(failing ? `${failing} problem${failing === 1 ? "" : "s"}: passthrough will not work until ${failing === 1 ? "it is" : "they are"} fixed\n` : `ready for VFIO passthrough${address ? ` of ${address}` : ""}\n`);
  return failing ? 1 : 0;
}
