// Passthrough over vfio-user beside the same device emulated in the VMM, in one run: the guest program
// guests/vfio-bench.c drives a device with the test engine (interrupt round trips through MSI-X, 64 KiB DMA copies,
// trapped register reads) once through the vfio-user test server (tools/vfio-user-server, another process: DMA
// through the shared memfd, interrupts from its eventfds into KVM irqfds, register accesses as REGION_READ/WRITE
// messages) and once against EngineTwin (src/engine-device.ts: the same registers served in this process), in
// alternating rounds. The host times each phase from the guest's "begin" line to its "end" line (both written from
// the vCPU's exits). Run after a build: `pnpm --filter @vmm/guest-tests bench`.
import "reflect-metadata";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { recordBench, recordSkip, type FigureInput } from "@vmm/bench-kit";
import { Tokens } from "@vmm/core";
import { createVfioPciFunction, VfioUserClient } from "@vmm/device-vfio";
import { buildGuest } from "@vmm/guest-kit";
import { kvmAvailability } from "@vmm/kvm-native";
import { EngineTwin } from "../src/engine-device.js";
import { runPhases, type Phase, type Phases } from "./phases.js";

// Compiled to build/bench/: the package is two levels up.
const pkg = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const root = join(pkg, "..", "..");
const serverBin = join(root, "tools", "vfio-user-server", "dist", "cli.js");
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const BENCH = { package: "@vmm/guest-tests", name: "vfio-user", title: "vfio-user passthrough beside the same device emulated in the VMM" };

async function startServer(socket: string): Promise<() => Promise<void>> {
  const child = spawn(process.execPath, [serverBin, "--socket", socket, "--device", "nvme"], { stdio: ["ignore", "pipe", "inherit"] });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("listening")) resolve();
    });
    void exited.then(() => reject(new Error("vfio-user-server exited before listening")));
  });
  return async () => {
    child.kill();
    await exited;
  };
}

async function main(): Promise<void> {
  const kvm = kvmAvailability();
  if (!kvm.ok) {
    console.log(`vfio-user bench SKIPPED: ${kvm.reason}`);
    recordSkip({ ...BENCH, reason: kvm.reason });
    return;
  }
  const elf = await buildGuest("vfio-bench", { format: "elf", source: join(pkg, "guests", "vfio-bench.c") });
  const dir = mkdtempSync(join(tmpdir(), "vmm-vfio-bench-"));
  const results: Record<"vfio-user" | "emulated", Phases[]> = { "vfio-user": [], emulated: [] };
  try {
    for (let round = 0; round < ROUNDS; round++) {
      results.emulated.push(await runPhases(elf, (m) => [new EngineTwin("engine-twin", m.container.resolve(Tokens.GuestMemory))]));
      const socket = join(dir, `nvme-${round}.sock`);
      const stop = await startServer(socket);
      try {
        results["vfio-user"].push(
          await runPhases(elf, (m) => [createVfioPciFunction({ container: m.container, name: "vfio-user0" }, VfioUserClient.connect(socket))]),
        );
      } finally {
        await stop();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const rate = (kind: "vfio-user" | "emulated", phase: string, per: (p: Phase) => number) => median(results[kind].map((r) => per(r[phase]!) / r[phase]!.seconds));
  // printed name, guest phase, per-phase amount, digits; then the recorded metric and unit
  const rows: Array<[string, string, (p: Phase) => number, number, string, string]> = [
    ["MSI-X interrupt round trips /s", "irq", (p) => p.count, 0, "MSI-X interrupt round trips", "round trips/s"],
    ["DMA 64 KiB copies, MB/s", "dma", (p) => p.bytes / 1e6, 1, "DMA 64 KiB copies", "MB/s"],
    ["trapped register reads /s", "mmio", (p) => p.count, 0, "trapped register reads", "reads/s"],
  ];
  const figures: FigureInput[] = [];
  console.log(`vfio-user passthrough vs the same device emulated in the VMM (median of ${ROUNDS} alternating rounds)\n`);
  console.log("| measure | vfio-user | emulated | vfio-user/emulated |");
  console.log("|---|---|---|---|");
  for (const [name, phase, per, digits, metric, unit] of rows) {
    const a = rate("vfio-user", phase, per);
    const b = rate("emulated", phase, per);
    console.log(`| ${name} | ${a.toFixed(digits)} | ${b.toFixed(digits)} | ${(a / b).toFixed(2)} |`);
    figures.push({ metric: `${metric} over vfio-user`, value: a, unit, reference: { name: "emulated in the VMM", value: b } });
  }
  recordBench({ ...BENCH, rows: figures });
}

await main();
