import { accessSync, constants } from "node:fs";

function kvmUsable(): boolean {
  try {
    accessSync("/dev/kvm", constants.R_OK | constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** Whether /dev/kvm can be opened; when not, says so loudly once (tests then skip with describe.skipIf). */
export const kvmOk = kvmUsable();
if (!kvmOk) {
  console.warn("\n" + "!".repeat(78) + "\n!! /dev/kvm is not usable: vmm run tests with real guests are SKIPPED.\n" + "!".repeat(78) + "\n");
}
