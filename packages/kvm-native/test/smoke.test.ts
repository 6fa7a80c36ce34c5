import { describe, expect, it } from "vitest";
import { kvmAvailability } from "../src/index.js";
import { Recorder, realModeVm } from "./support/guest.js";

const avail = kvmAvailability();
describe.skipIf(!avail.ok)("smoke", () => {
  it("runs out and hlt", () => {
    const t = realModeVm(`mov $0x42, %al\n out %al, $0x10\n hlt`);
    const r = new Recorder(t.vcpu);
    expect(t.vcpu.run(r)).toEqual({ reason: "hlt" });
    expect(r.pios).toEqual([[0x10, 1, true, 0x42]]);
    t.close();
  });
});
