// Boots the test kernel under the real `vmm` binary and collects what the guest's init reported.
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { guestTscKhz } from "./tsc.js";

/** `vmm` as users run it: the @vmm/cli package's bin. */
export const vmmBin = join(dirname(createRequire(import.meta.url).resolve("@vmm/cli")), "..", "bin", "vmm.js");

/**
 * What the test kernel needs on this host's emulated KVM: hide instructions its CPL0 emulator lacks, keep the idle
 * loop on HLT, and give it the TSC frequency KVM runs (`tsc_early_khz`, src/tsc.ts): three PM timer exits take
 * about as long as Linux's calibration allows, so calibrating failed on most boots of a busy host. See README.md.
 */
const tscKhz = guestTscKhz();
export const HOST_CMDLINE = [
  ...(tscKhz ? [`tsc_early_khz=${tscKhz}`] : []),
  "clearcpuid=cx16,popcnt,xsave,rdtscp,114,tsc_deadline_timer,rdrand,rdseed,rdpid,fsgsbase,smap,pcid,invpcid,erms,fsrm,movbe,clwb",
  "mitigations=off",
  "idle=halt",
  // A panic reboots at once (vmm then exits): the test fails on the missing report instead of timing out.
  "panic=-1",
].join(" ");

export interface BootOptions {
  bzImage: string;
  initramfs: string;
  /** vmm options besides -k/-i/-p (devices, memory). */
  vmmArgs: readonly string[];
  /** Kernel parameters before "--". */
  kernelArgs?: readonly string[];
  /** The init's checks, in order (see init/init.c). */
  checks: readonly string[];
  timeoutMs: number;
  /** Called with each complete serial line as it arrives (e.g. to answer on the console). */
  onLine?: (line: string) => void;
  /** Called (and awaited) before each boot is spawned (a retried boot is a new vmm: per-boot host state, such as
   *  device servers that take one client, starts over here). */
  onBoot?: (attempt: number) => void | Promise<void>;
  /** Rewrites the vmm command line before it is spawned (e.g. to run it as another user). */
  command?: (file: string, args: readonly string[]) => { file: string; args: string[] };
}

export interface BootResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  /** Everything the guest printed on ttyS0 (kernel log and init's lines). */
  serial: string;
  stderr: string;
  /** The init's "@@ " lines, without the prefix. */
  report: string[];
  /** Milliseconds from spawning vmm to the init's first line. */
  userspaceMs: number | undefined;
  timedOut: boolean;
  /** The boot was stopped at HOST_CLOCK_FAILURE. */
  hostClockFailure: boolean;
}

/**
 * What Linux prints when it could not calibrate the TSC against the PM timer: each calibration read must take
 * under 50,000 TSC cycles, and on this project's nested host a port read through the VMM takes about 25,000,
 * with bursts above the limit while the host is busy. The boot then stalls; it is this host's, not the VMM's.
 */
export const HOST_CLOCK_FAILURE = "tsc: Marking TSC unstable due to could not calculate TSC khz";

/** Boots tried in all when each stops at HOST_CLOCK_FAILURE (it shows about 20 s into a boot; under load from other suites about 1 boot in 3 hits it). */
const CLOCK_ATTEMPTS = 5;

/**
 * Runs one guest to its end (the init exits through the debug-exit port) or until the time runs out. A boot that
 * hits HOST_CLOCK_FAILURE is stopped and tried again, up to CLOCK_ATTEMPTS in all, with a loud line each time.
 */
export async function bootLinux(o: BootOptions): Promise<BootResult> {
  for (let attempt = 1; ; attempt++) {
    await o.onBoot?.(attempt);
    const r = await bootOnce(o);
    if (!r.hostClockFailure || attempt === CLOCK_ATTEMPTS) return r;
    console.warn(`\n!!! Linux could not calibrate its TSC against the PM timer on this busy host (${HOST_CLOCK_FAILURE}); boot ${attempt + 1} of at most ${CLOCK_ATTEMPTS}\n`);
  }
}

function bootOnce(o: BootOptions): Promise<BootResult> {
  // ttyS0 last: the last console= is /dev/console, where the init's report goes.
  const cmdline = [...(o.kernelArgs ?? []), "console=ttyS0", HOST_CMDLINE, "--", ...o.checks].join(" ");
  const args = [vmmBin, "run", "-k", o.bzImage, "-i", o.initramfs, "-p", cmdline, ...o.vmmArgs];
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const command = o.command?.(process.execPath, args) ?? { file: process.execPath, args };
    const child = spawn(command.file, command.args, { stdio: ["ignore", "pipe", "pipe"] });
    let serial = "";
    let stderr = "";
    let partial = "";
    let userspaceMs: number | undefined;
    let timedOut = false;
    let hostClockFailure = false;
    const report: string[] = [];
    child.stdout.on("data", (chunk: Buffer) => {
      const text = chunk.toString("latin1");
      serial += text;
      const lines = (partial + text).split("\n");
      partial = lines.pop() ?? "";
      for (const raw of lines) {
        const line = raw.replace(/\r$/, "");
        if (line.startsWith("@@ ")) {
          userspaceMs ??= Date.now() - started;
          report.push(line.slice(3));
        }
        if (line.includes(HOST_CLOCK_FAILURE) && !hostClockFailure) {
          hostClockFailure = true;
          child.kill("SIGTERM");
        }
        o.onLine?.(line);
      }
    });
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGTERM");
    }, o.timeoutMs);
    child.on("error", reject);
    child.on("close", (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, serial, stderr, report, userspaceMs, timedOut, hostClockFailure });
    });
  });
}

/** The pattern init.c writes for a sector: the host checks the image with the same formula. */
export function sectorPattern(lba: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = ((lba * 131 + i * 7 + (i >> 9)) ^ 0x5a) & 0xff;
  return out;
}

export interface PciFunctionReport {
  bdf: string;
  vendor: number;
  device: number;
  classCode: number;
  irq: number;
  driver: string;
  bars: { index: number; start: bigint; end: bigint; flags: bigint }[];
}

/** Parses the init's "pci" and "bar" lines into one record per function, in bus order. */
export function parsePci(report: readonly string[]): PciFunctionReport[] {
  const functions = new Map<string, PciFunctionReport>();
  for (const line of report) {
    const f = /^pci (\S+) vendor=0x([0-9a-f]+) device=0x([0-9a-f]+) class=0x([0-9a-f]+) irq=(\d+) driver=(\S+)$/.exec(line);
    if (f) {
      functions.set(f[1]!, { bdf: f[1]!, vendor: parseInt(f[2]!, 16), device: parseInt(f[3]!, 16), classCode: parseInt(f[4]!, 16), irq: Number(f[5]), driver: f[6]!, bars: [] });
      continue;
    }
    const b = /^bar (\S+) (\d+) (0x[0-9a-f]+) (0x[0-9a-f]+) (0x[0-9a-f]+)$/.exec(line);
    if (b) functions.get(b[1]!)?.bars.push({ index: Number(b[2]), start: BigInt(b[3]!), end: BigInt(b[4]!), flags: BigInt(b[5]!) });
  }
  return [...functions.values()].sort((a, b) => a.bdf.localeCompare(b.bdf));
}
