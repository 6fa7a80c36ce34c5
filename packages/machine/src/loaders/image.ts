import { ConfigurationError, type GuestMemory } from "@vmm/core";
import type { EntryState } from "../x86_64/cpu-state.js";

/** What a loader leaves behind: how the boot vCPU (and test-guest APs) start. */
export interface LoadedImage {
  readonly kind: "raw" | "elf" | "bzimage";
  /** Entry of the bootstrap processor. */
  readonly entry: EntryState;
  /**
   * Entry for application processors made runnable by the VMM (raw and ELF test guests), or undefined when
   * the guest starts them itself with INIT/SIPI (Linux).
   */
  readonly apEntry?: EntryState;
  /** Guest-physical ranges the image occupies, for diagnostics. */
  readonly segments: readonly { gpa: number; size: number }[];
  /** How the image was entered, for the debug log. */
  readonly note?: string;
}

/** Copies `bytes` into guest RAM, refusing anything that does not fit (never a partial write). */
export function place(memory: GuestMemory, gpa: number, bytes: Uint8Array, what: string): void {
  if (!memory.contains(gpa, bytes.length)) {
    throw new ConfigurationError(
      `${what} does not fit in guest RAM at 0x${gpa.toString(16)} (+0x${bytes.length.toString(16)} bytes); give the VM more memory`,
    );
  }
  memory.write(gpa, bytes);
}
