// The gate for test suites that need /dev/kvm: when KVM is missing they skip (describe.skipIf(!gate.ok)) and
// say so LOUDLY, once, so a green run on a host without KVM is never mistaken for a tested one.
import { accessSync, constants } from "node:fs";

export type KvmAvailability = { ok: true } | { ok: false; reason: string };

export interface KvmTestGateOptions {
  /** What is skipped, as the banner names it (default "KVM tests"). */
  what?: string;
  /**
   * The availability check. Default: /dev/kvm opens for reading and writing. Packages that have
   * @vmm/kvm-native pass its kvmAvailability (it also loads the addon and checks the API version).
   */
  check?: () => KvmAvailability;
  /** Where the banner goes (default console.warn). */
  warn?: (message: string) => void;
}

/** /dev/kvm can be opened read-write (the default check, for packages that do not load the addon). */
export function devKvmUsable(path = "/dev/kvm"): KvmAvailability {
  try {
    accessSync(path, constants.R_OK | constants.W_OK);
    return { ok: true };
  } catch (e) {
    return { ok: false, reason: `${path} is not usable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` };
  }
}

/** The banner printed when `what` of `packageName` is skipped for `reason`. */
export function kvmSkipBanner(packageName: string, what: string, reason: string): string {
  const rule = "!".repeat(78);
  return `\n${rule}\n!! ${packageName}: ${what} SKIPPED: ${reason}\n${rule}\n`;
}

const announced = new Set<string>();

/**
 * Checks KVM for `packageName`'s tests; when it is missing, prints the loud skip banner (once per package and
 * `what` in this process) and returns the reason. Use as `describe.skipIf(!gate.ok)`.
 */
export function kvmTestGate(packageName: string, options: KvmTestGateOptions = {}): KvmAvailability {
  const what = options.what ?? "KVM tests";
  const availability = (options.check ?? devKvmUsable)();
  if (!availability.ok) {
    const key = `${packageName}\0${what}`;
    if (!announced.has(key)) {
      announced.add(key);
      (options.warn ?? console.warn)(kvmSkipBanner(packageName, what, availability.reason));
    }
  }
  return availability;
}
