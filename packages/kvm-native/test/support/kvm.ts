// Loud skip for the suites that need /dev/kvm.
import { kvmAvailability } from "../../src/index.js";

const availability = kvmAvailability();
export const kvmOk = availability.ok;
if (!availability.ok) {
  console.warn(
    [
      "#".repeat(72),
      "# WARNING: KVM tests SKIPPED: " + availability.reason,
      "#".repeat(72),
    ].join("\n"),
  );
}
