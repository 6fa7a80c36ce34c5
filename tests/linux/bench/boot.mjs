// Time from starting the VMM to the test init's first line, vmm beside QEMU with KVM (same kernel, initramfs and
// command line), alternating, median of the rounds, printed as a ratio. Run after a build: pnpm --filter
// @vmm/linux-tests bench. Skips QEMU with a line when qemu-system-x86_64 is not installed.
import { spawn, spawnSync } from "node:child_process";
import { recordBench } from "@vmm/bench-kit";
import { HOST_CMDLINE, vmmBin } from "../dist/boot.js";
import { buildInitramfs } from "../dist/initramfs.js";
import { buildTestKernel } from "../dist/kernel.js";

const ROUNDS = Number(process.env.VMM_BENCH_ROUNDS ?? 3);
const kernel = await buildTestKernel();
const initramfs = await buildInitramfs();
const cmdline = `console=ttyS0 ${HOST_CMDLINE} -- rng`;

/** Milliseconds until the first "@@ " line on the command's stdout; the process is then stopped. */
function timeToInit(cmd, args) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let done = false;
    const timer = setTimeout(() => finish(new Error(`${cmd}: no init line within 240 s:\n${out.slice(-2000)}`)), 240_000);
    function finish(result) {
      if (done) return;
      done = true;
      clearTimeout(timer);
      child.kill("SIGKILL");
      result instanceof Error ? reject(result) : resolve(result);
    }
    child.stdout.on("data", (d) => {
      out += d.toString("latin1");
      if (/^@@ /m.test(out)) finish(Number(process.hrtime.bigint() - started) / 1e6);
    });
    child.stderr.on("data", (d) => {
      out += d.toString();
      // QEMU stops the guest but stays up after an emulation failure.
      if (/KVM internal error/.test(out)) finish(new Error(`${cmd}: KVM internal error (emulation failure):\n${out.slice(-2000)}`));
    });
    child.on("close", () => finish(new Error(`${cmd} exited before its init printed:\n${out.slice(-2000)}`)));
  });
}

const vmm = () => timeToInit(process.execPath, [vmmBin, "run", "-k", kernel.bzImage, "-i", initramfs, "-m", "256M", "-p", cmdline, "--rng"]);
const qemuBin = spawnSync("qemu-system-x86_64", ["--version"]).status === 0 ? "qemu-system-x86_64" : undefined;
const qemu = () =>
  timeToInit(qemuBin, ["-machine", "q35,accel=kvm", "-m", "256M", "-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio",
    "-kernel", kernel.bzImage, "-initrd", initramfs, "-append", cmdline, "-device", "virtio-rng-pci", "-device", "isa-debug-exit,iobase=0x501"]);

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const times = { vmm: [], qemu: [] };
let qemuFailure;
for (let i = 0; i < ROUNDS; i++) {
  times.vmm.push(await vmm());
  if (!qemuBin || qemuFailure) continue;
  // A QEMU that cannot boot this kernel here is reported, not fatal: vmm's figure still stands.
  try {
    times.qemu.push(await qemu());
  } catch (e) {
    qemuFailure = e.message.split("\n").filter((l) => /error|failed/i.test(l)).at(-1) ?? e.message.split("\n")[0];
  }
}
const s = (ms) => `${(ms / 1000).toFixed(1)} s`;
console.log(`Linux test kernel, vmm run to the init's first line, median of ${ROUNDS}:`);
console.log(`  vmm   ${s(median(times.vmm))}  (${times.vmm.map(s).join(", ")})`);
if (qemuFailure) {
  console.log(`  qemu  failed: ${qemuFailure.trim()}`);
} else if (qemuBin) {
  console.log(`  qemu  ${s(median(times.qemu))}  (${times.qemu.map(s).join(", ")}; q35, KVM)`);
  console.log(`  vmm/qemu ${(median(times.vmm) / median(times.qemu)).toFixed(2)}`);
} else {
  console.log("  qemu  skipped: qemu-system-x86_64 is not installed (Debian package qemu-system-x86)");
}

const qemuMeasured = qemuBin && !qemuFailure;
recordBench({
  package: "@vmm/linux-tests",
  name: "boot",
  title: "Linux test kernel: vmm run to the init's first line, beside QEMU with KVM",
  rows: [
    {
      metric: "vmm run to init's first line",
      value: median(times.vmm),
      unit: "ms",
      ...(qemuMeasured
        ? { reference: { name: "QEMU q35 KVM", value: median(times.qemu) } }
        : { note: qemuFailure ? `QEMU failed: ${qemuFailure.trim()}` : "QEMU not installed: no reference" }),
    },
  ],
});
