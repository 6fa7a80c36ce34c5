import { readFileSync } from "node:fs";
import { MemoryLogger } from "@vmm/core";
import { describe, expect, it } from "vitest";
import { E820Type, Machine, type E820Entry } from "./internals.js";
import { debianCloudKernel } from "./fixtures/debian-kernel.js";
import { kvmOk } from "./helpers.js";

const kernel = kvmOk ? await debianCloudKernel() : ({ ok: false, reason: "KVM is unusable" } as const);
if (kvmOk && !kernel.ok) {
  console.warn(`\n${"!".repeat(78)}\n!! @vmm/machine: Linux boot test SKIPPED: ${kernel.reason}\n${"!".repeat(78)}\n`);
}

const E820_NAMES: Record<number, string> = { [E820Type.ram]: "usable", [E820Type.reserved]: "reserved", [E820Type.acpi]: "ACPI data", [E820Type.nvs]: "ACPI NVS" };
const hex16 = (n: number) => `0x${n.toString(16).padStart(16, "0")}`;
const e820Line = (e: E820Entry) => `BIOS-e820: [mem ${hex16(e.addr)}-${hex16(e.addr + e.size - 1)}] ${E820_NAMES[e.type]}`;

// Linux runs fully emulated on this host (every instruction ~0.3 us): it prints its early log and then stops on
// an instruction KVM's emulator lacks (cmpxchg16b in SLUB here). See docs/host-kvm.md.
describe.skipIf(!kernel.ok)("Linux (Debian cloud kernel) as far as this host's KVM allows", () => {
  it("prints its early boot log on ttyS0 with our e820 map and command line, reads our ACPI tables, and the emulation failure that follows is reported", async () => {
    if (!kernel.ok) return;
    const cmdline = "console=ttyS0 earlyprintk=serial,ttyS0,115200 init_on_alloc=0 nokaslr";
    let serial = "";
    const logger = new MemoryLogger();
    const machine = new Machine({
      memoryMiB: 128,
      kernel: { kind: "bzimage", path: kernel.vmlinuz },
      cmdline,
      serial: { output: (b) => void (serial += Buffer.from(b).toString("latin1")) },
      logger,
    });
    // A bound, not an assertion: if the kernel got stuck the test fails with whatever it printed.
    const guard = setTimeout(() => machine.stop("the Linux test ran out of time"), 170_000);
    let result;
    try {
      result = await machine.run();
    } finally {
      clearTimeout(guard);
      machine.close();
    }
    const lines = serial.split(/\r?\n/).map((l) => l.replace(/^\[\s*\d+\.\d+\] /, ""));

    expect(serial).toContain(`Linux version ${kernel.version}`);
    expect(lines).toContain(`Command line: ${cmdline}`);
    // The kernel's BIOS-e820 lines are exactly the VMM's map.
    expect(lines.filter((l) => l.startsWith("BIOS-e820: "))).toEqual(machine.memoryMap.e820.map(e820Line));
    // It found our ACPI tables (checksums are checked by the guest-kit programs and unit tests) and the CPUs/IOAPIC.
    for (const sig of ["RSDP", "XSDT", "FACP", "DSDT", "APIC", "MCFG"]) expect(serial).toMatch(new RegExp(`ACPI: ${sig} 0x00000000000F0`));
    expect(lines).toContain("ACPI: Using ACPI (MADT) for SMP configuration information");
    expect(serial).toMatch(/IOAPIC\[0\]: apic_id 1, version 17, address 0xfec00000, GSI 0-23/);
    // "found SMP MP-table" is printed only by kernels built with CONFIG_X86_MPPARSE; Debian's cloud kernel is not.
    // The MP table itself is checked from a guest by the `mptable` guest-kit program.
    const mpparse = /^CONFIG_X86_MPPARSE=y$/m.test(readFileSync(kernel.config, "utf8"));
    if (mpparse) expect(serial).toMatch(/found SMP MP-table at \[mem 0x0009fc00-0x0009fc0f\]/);
    else expect(serial).not.toContain("found SMP MP-table");

    expect(result.status).not.toBe(0);
    expect(result.reason).toBe("error");
    expect(result.message).toMatch(/^vCPU 0: KVM internal error \(emulation failure\) at RIP 0xffffffff[0-9a-f]{8}, instruction bytes: [0-9a-f]{2}( [0-9a-f]{2})*$/);
  }, 200_000);
});
