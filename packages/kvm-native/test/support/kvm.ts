// Loud skip for the suites that need /dev/kvm.
import { kvmTestGate } from "@vmm/test-support";
import { kvmAvailability } from "../../src/index.js";

export const kvmOk = kvmTestGate("@vmm/kvm-native", { check: () => kvmAvailability() }).ok;
