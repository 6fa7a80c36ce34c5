import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MemoryLogger } from "@vmm/core";
import { buildGuest } from "@vmm/guest-kit";
import { describe, expect, it } from "vitest";
import { kvmOk, runGuest } from "./helpers.js";
import { Machine, type MachineResult } from "./internals.js";
import { loadSnapshot } from "../src/index.js";

const threads = { vcpuThreads: true } as const;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A machine running guest `name` with vcpuThreads, its serial output collected, and a way to wait for a line. */
async function startThreaded(name: string, cpus = 1) {
  const path = await buildGuest(name, { format: "elf" });
  let serial = "";
  const waiters: Array<{ text: string; resolve: () => void }> = [];
  const machine = new Machine({
    memoryMiB: 64,
    cpus,
    logger: new MemoryLogger(),
    ...threads,
    kernel: { kind: "elf", path },
    serial: {
      output: (bytes) => {
        serial += Buffer.from(bytes).toString("latin1");
        for (const w of waiters.filter((x) => serial.includes(x.text))) w.resolve();
      },
    },
  });
  const result: Promise<MachineResult> = machine.run();
  const line = (text: string) =>
    serial.includes(text) ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ text, resolve }));
  return { machine, result, line, serial: () => serial };
}

describe.skipIf(!kvmOk)("vcpuThreads: every vCPU on a thread of its own (real /dev/kvm)", () => {
  it.each([
    ["raw", 2],
    ["elf", 2],
  ] as const)("runs every vCPU of the smp guest (%s entry, %i vCPUs)", async (format, cpus) => {
    const { result, serial } = await runGuest("smp", format, { cpus, ...threads });
    expect(serial).toContain(`MADT lists ${cpus} cpus\n`);
    for (let id = 1; id < cpus; id++) expect(serial).toContain(`cpu AP apic id ${id} running\n`);
    expect(serial).toContain(`all ${cpus} cpus ran\n`);
    expect(result.status).toBe(0);
  });

  it("is the default for more than one vCPU; one vCPU takes turns on the JS thread unless asked", async () => {
    const path = await buildGuest("hello", { format: "elf" });
    const make = (options: { cpus: number; vcpuThreads?: boolean }) =>
      new Machine({ memoryMiB: 64, logger: new MemoryLogger(), kernel: { kind: "elf", path }, ...options });
    for (const [options, expected] of [
      [{ cpus: 2 }, true],
      [{ cpus: 1 }, false],
      [{ cpus: 2, vcpuThreads: false }, false],
      [{ cpus: 1, vcpuThreads: true }, true],
    ] as const) {
      const machine = make(options);
      try {
        expect([options, machine.vcpuThreads]).toEqual([options, expected]);
      } finally {
        machine.close();
      }
    }
  });

  it("hands port I/O to the devices (COM1, the debug-exit port) and ends with the guest's status", async () => {
    const hello = await runGuest("hello", "elf", threads);
    expect(hello.serial).toContain("Hello from guest-kit (elf entry), apic id 0\n");
    expect(hello.result).toMatchObject({ status: 0, reason: "debug-exit" });
    const status = await runGuest("exit-status", "raw", threads);
    expect(status.serial).toBe("exiting with 42\n");
    expect(status.result).toMatchObject({ status: 42, reason: "debug-exit" });
  });

  it("takes exceptions and a LAPIC self-IPI, and reports failures with the vCPU and RIP", async () => {
    const exceptions = await runGuest("exceptions", "raw", threads);
    expect(exceptions.serial).toBe("exceptions: ud 1 de 1 pf 1 cr2 100000000 ipi 1\n");
    const triple = await runGuest("triple-fault", "elf", threads);
    expect(triple.result.reason).toBe("shutdown");
    expect(triple.result.message).toMatch(/^vCPU 0: the guest shut down \(triple fault\) at RIP 0x[0-9a-f]+$/);
    const emulation = await runGuest("emulation-failure", "elf", threads);
    expect(emulation.result.message).toMatch(/^vCPU 0: KVM internal error \(emulation failure\) at RIP 0x1[0-9a-f]{5}, instruction bytes: cc/);
  });

  it("pauses with every vCPU out of KVM_RUN (its state holds still, a snapshot can be taken) and resumes", async () => {
    const { machine, result, line, serial } = await startThreaded("spin", 2);
    const dir = mkdtempSync(join(tmpdir(), "vcpu-threads-"));
    try {
      await line("spinning\n");
      expect(machine.pause()).toBe(true);
      const before = machine.vcpuStates();
      await sleep(50);
      expect(machine.vcpuStates()).toEqual(before);
      const snap = join(dir, "snap");
      await machine.saveSnapshot(snap);
      expect(readdirSync(snap).length).toBeGreaterThan(0);
      expect(machine.resume()).toBe(true);
      expect(await result).toMatchObject({ status: 0, reason: "debug-exit" });
      expect(serial()).toMatch(/spin done \d+/);
    } finally {
      machine.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("restores a 2-vCPU snapshot taken on threads into machines that run on threads by default (eager and lazy memory)", async () => {
    const { machine, line, serial } = await startThreaded("spin", 2);
    const dir = mkdtempSync(join(tmpdir(), "vcpu-threads-restore-"));
    const snap = join(dir, "snap");
    try {
      await line("spinning\n");
      expect(machine.pause()).toBe(true);
      await machine.saveSnapshot(snap);
      expect(serial()).not.toMatch(/spin done/);
    } finally {
      machine.close();
    }
    try {
      const path = await buildGuest("spin", { format: "elf" });
      for (const memory of ["eager", "lazy"] as const) {
        let out = "";
        const restored = new Machine({
          memoryMiB: 64,
          cpus: 2,
          logger: new MemoryLogger(),
          kernel: { kind: "elf", path },
          serial: { output: (bytes) => void (out += Buffer.from(bytes).toString("latin1")) },
        });
        try {
          expect(restored.vcpuThreads).toBe(true);
          restored.restoreSnapshot(loadSnapshot(snap), memory);
          expect(await restored.run(), memory).toMatchObject({ status: 0, reason: "debug-exit" });
          // The guest goes on from mid-spin: its first line was before the snapshot, its last comes now.
          expect(out, memory).toMatch(/^spin done \d+\n$/);
        } finally {
          restored.close();
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("ends with halt when every vCPU halts with interrupts off inside KVM_RUN (the blocking-statistic watch)", async () => {
    const { machine, result, line } = await startThreaded("halt", 2);
    try {
      await line("halting\n");
      expect(await result).toEqual({ status: 0, reason: "halt", message: "all vCPUs halted with interrupts disabled" });
    } finally {
      machine.close();
    }
  });

  it("stops a guest whose vCPUs never exit (stop() kicks the threads), and close() leaves no thread", async () => {
    const { machine, result, line } = await startThreaded("spin", 2);
    try {
      await line("spinning\n");
      await sleep(20);
      // Readable while running: vcpuStates pauses the threads for the read.
      expect(machine.vcpuStates()).toHaveLength(2);
      machine.stop("test over");
      expect(await result).toEqual({ status: 1, reason: "stopped", message: "stopped: test over" });
    } finally {
      machine.close();
    }
    const spinning = await startThreaded("spin");
    await spinning.line("spinning\n");
    spinning.machine.close();
    await expect(spinning.result).resolves.toBeDefined();
  });
});
