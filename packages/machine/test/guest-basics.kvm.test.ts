import { describe, expect, it } from "vitest";
import { kvmOk, runGuest } from "./helpers.js";

describe.skipIf(!kvmOk)("guest programs under KVM", () => {
  for (const format of ["raw", "elf"] as const) {
    it(`prints hello world on COM1 via the ${format} entry and exits 0`, async () => {
      const { result, serial } = await runGuest("hello", format);
      expect(serial).toContain(`Hello from guest-kit (${format} entry), apic id 0\n`);
      expect(result).toMatchObject({ status: 0, reason: "debug-exit" });
    });
  }

  it("propagates the debug-exit status", async () => {
    const { result, serial } = await runGuest("exit-status", "raw");
    expect(serial).toBe("exiting with 42\n");
    expect(result).toMatchObject({ status: 42, reason: "debug-exit" });
  });

  it("ends the VM cleanly when the guest resets through the i8042", async () => {
    const { result, serial } = await runGuest("reset", "elf");
    expect(serial).toMatch(/^i8042 status [0-9a-f]+\nresetting via i8042\n$/);
    expect(serial).not.toContain("still running");
    expect(result).toMatchObject({ status: 0, reason: "reset" });
  });

  it("reads the host clock and the memory size from the CMOS RTC", async () => {
    const now = new Date(Date.UTC(2031, 6, 9, 13, 45, 27));
    const { result, serial } = await runGuest("rtc", "raw", { memoryMiB: 128, now: () => now });
    expect(result.status).toBe(0);
    expect(serial).toContain("RTC 2031-07-09 13:45:27 statusB=2 statusD=80\n");
    // 128 MiB: 127 MiB above 1 MiB (capped at 0xffff KiB); 112 MiB above 16 MiB in 64 KiB units; none above 4 GiB.
    expect(serial).toContain(`CMOS ext=65535 KiB above16M=${(112 * 1024) / 64} x64KiB high=0 x64KiB\n`);
    expect(serial).toContain("RTC binary minutes=45\n");
  });

  it("delivers UART interrupts (IRQ 4 through the IOAPIC) to an IDT handler, THRE and RDA", async () => {
    let sent = false;
    const { result, serial } = await runGuest("uart-irq", "elf", {
      onSerial: (text, input) => {
        if (!sent && text.includes("ready for input")) {
          sent = true;
          setTimeout(() => input.write("Z"), 5);
        }
      },
    });
    expect(serial).toContain("uart-irq: THRE interrupt 1\n");
    expect(serial).toContain("uart-irq: RDA interrupt 1, got 'Z'\n");
    expect(result).toMatchObject({ status: 0, reason: "debug-exit" });
  });

  it("finds the ECAM window through ACPI MCFG and sees the same devices as CF8/CFC", async () => {
    const { result, serial } = await runGuest("pci-ecam", "raw");
    expect(serial).toMatch(/RSDP at 0x[0-9a-f]+ rev 2, MCFG ok, MADT ok\n/);
    expect(serial).toContain("ECAM base e0000000\n");
    expect(serial).toContain("pci 00:00.0 id 29c08086 class 06000000\n");
    expect(serial).toContain("mismatches 0\n");
    expect(result.status).toBe(0);
  });

  it("reports an emulation failure with vCPU, RIP and instruction bytes and stops with a non-zero status", async () => {
    const { result, serial } = await runGuest("emulation-failure", "elf");
    expect(serial).toBe("about to run int3\n");
    expect(result.status).not.toBe(0);
    expect(result.reason).toBe("error");
    expect(result.message).toMatch(/^vCPU 0: KVM internal error \(emulation failure\) at RIP 0x1[0-9a-f]{5}, instruction bytes: cc/);
  });

  // Two vCPUs run on threads of their own by default (vcpu-threads.kvm.test.ts); here they take turns on the JS thread.
  it.each(["raw", "elf"] as const)("runs every vCPU taking turns on the JS thread (2 vCPUs, both listed in the MADT), %s entry", async (format) => {
    const { result, serial } = await runGuest("smp", format, { cpus: 2, vcpuThreads: false });
    expect(serial).toContain("MADT lists 2 cpus\n");
    expect(serial).toContain("cpu BSP apic id 0 running\n");
    expect(serial).toContain("cpu AP apic id 1 running\n");
    expect(serial).toContain("all 2 cpus ran\n");
    expect(result.status).toBe(0);
  });

  it("takes #UD, #DE and #PF in IDT handlers that resume the guest, and a LAPIC self-IPI", async () => {
    const { result, serial } = await runGuest("exceptions", "raw");
    expect(serial).toBe("exceptions: ud 1 de 1 pf 1 cr2 100000000 ipi 1\n");
    expect(result.status).toBe(0);
  });

  it("reports a triple fault as a shutdown with the vCPU and RIP, non-zero status", async () => {
    const { result, serial } = await runGuest("triple-fault", "elf");
    expect(serial).toBe("triple faulting\n");
    expect(result.status).not.toBe(0);
    expect(result.reason).toBe("shutdown");
    expect(result.message).toMatch(/^vCPU 0: the guest shut down \(triple fault\) at RIP 0x[0-9a-f]+$/);
  });

  it("refuses more vCPUs than KVM offers, and bad options, with clear errors", async () => {
    await expect(runGuest("hello", "raw", { cpus: 1000 })).rejects.toThrow(/1000 vCPUs asked for, but this host's KVM allows at most \d+/);
    await expect(runGuest("hello", "raw", { memoryMiB: 3 })).rejects.toThrow(/memory must be a whole number of MiB between 16/);
  });

  it("stops when every vCPU halts with interrupts disabled", async () => {
    const { result, serial } = await runGuest("halt", "elf");
    expect(serial).toBe("halting\n");
    expect(result).toEqual({ status: 0, reason: "halt", message: "all vCPUs halted with interrupts disabled" });
  });

  it("keeps JS timers firing while the guest spins without exits", async () => {
    let ticks = 0;
    let spinningAt = 0;
    let ticksWhileSpinning = 0;
    const timer = setInterval(() => {
      ticks++;
      if (spinningAt) ticksWhileSpinning++;
    }, 10);
    try {
      const { result, serial } = await runGuest("spin", "elf", {
        onSerial: (text) => {
          if (!spinningAt && text.includes("spinning\n")) spinningAt = ticks || 1;
          if (text.includes("spin done")) spinningAt = 0;
        },
      });
      expect(result.status).toBe(0);
      expect(serial).toMatch(/spin done \d+/);
    } finally {
      clearInterval(timer);
    }
    expect(ticksWhileSpinning).toBeGreaterThanOrEqual(5);
  });
});

describe.skipIf(!kvmOk)("firmware tables as a guest sees them", () => {
  it("lists every CPU and the ISA interrupt sources in an MP table found where Linux scans", async () => {
    const { result, serial } = await runGuest("mptable", "raw", { cpus: 2 });
    expect(serial).toMatch(/MP floating pointer at 0x9fc00 spec 1\.4, table 0x[0-9a-f]+ PCMP len \d+ entries \d+ checksum ok\n/);
    expect(serial).toContain("MP cpus 2 io-interrupts 15\n");
    expect(result.status).toBe(0);
  });
});
