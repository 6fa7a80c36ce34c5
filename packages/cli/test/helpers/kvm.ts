import { kvmTestGate } from "@vmm/test-support";

/** Whether /dev/kvm can be opened; when not, says so loudly once (tests then skip with describe.skipIf). */
export const kvmOk = kvmTestGate("@vmm/cli", { what: "vmm run tests with real guests" }).ok;
