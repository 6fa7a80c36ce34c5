import { afterEach, describe, expect, it } from "vitest";
import { realModeVm, type TestVm } from "./support/guest.js";
import { kvmOk } from "./support/kvm.js";

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const noExits = { pio: () => 0, mmio: () => 0 };

async function waitFor(check: () => boolean, ms = 2000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(2)) if (check()) return true;
  return check();
}

describe.skipIf(!kvmOk)("Vcpu.stats(): KVM's binary statistics (real /dev/kvm)", () => {
  let t: TestVm | undefined;
  afterEach(() => t?.close());

  it("names the kernel's statistics; blocking reads 1 while the vCPU waits in HLT on its thread, 0 before and after", async () => {
    // Spins a while (rcx counts down), then halts with interrupts enabled: the in-kernel LAPIC keeps it in KVM_RUN.
    t = realModeVm("mov $0x20000, %ecx; 1: dec %ecx; jnz 1b; sti; 2: hlt; jmp 2b", { irqchip: true });
    const stats = t.vcpu.stats();
    expect(stats.descriptors().map((d) => d.name)).toEqual(expect.arrayContaining(["blocking", "halt_exits"]));
    expect(stats.value("no-such-statistic")).toBeUndefined();
    expect(stats.value("blocking")).toBe(0n);
    const run = t.vcpu.runOnThread(noExits);
    expect(await waitFor(() => stats.value("blocking") === 1n)).toBe(true);
    expect(stats.value("halt_exits")).toBeGreaterThan(0n);
    expect(t.vcpu.stopThread()).toBe(true);
    expect(await run).toEqual({ reason: "yield" });
    expect(stats.value("blocking")).toBe(0n);
    t.vcpu.close();
    expect(() => stats.value("blocking")).toThrow(/closed/);
  });
});
