/** `vmm run` as a process with real guests (guest-kit programs) under /dev/kvm. */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { buildGuest } from "@vmm/guest-kit";
import { beforeAll, describe, expect, it } from "vitest";
import { kvmOk } from "./helpers/kvm.js";
import { bin, cliDir, fixturePlugin, vmm } from "./helpers/spawn.js";

const fixture = fixturePlugin("fixture-plugin.mjs");
const tmp = mkdtempSync(path.join(tmpdir(), "vmm-kvm-"));
const guests: Record<string, string> = {};

describe.skipIf(!kvmOk)("vmm run under /dev/kvm", () => {
  beforeAll(async () => {
    for (const name of ["hello", "exit-status", "reset", "emulation-failure", "spin", "pci-ecam"]) {
      guests[name] = await buildGuest(name, { format: "elf" });
    }
    guests["hello-raw"] = await buildGuest("hello", { format: "raw" });
    guests.echo = await buildGuest("echo", { format: "elf", source: path.join(cliDir, "guests/echo.c") });
  }, 120_000);

  it("a guest that returns 0 exits 0, raw and ELF64 kernels alike", () => {
    for (const k of [guests.hello!, guests["hello-raw"]!]) {
      const r = vmm(["run", "-k", k, "-m", "64M"]);
      expect(r.stderr).toBe("");
      expect(r.stdout).toMatch(/^Hello from guest-kit \((raw|elf) entry\)/);
      expect(r.status).toBe(0);
    }
  });

  it("passes a debug-exit status through and says so", () => {
    const r = vmm(["run", "-k", guests["exit-status"]!, "--name", "ex"]);
    expect(r.stdout).toContain("exiting with 42");
    expect(r.status).toBe(42);
    expect(r.stderr).toBe("vmm: error: ex: the guest wrote 42 to the debug-exit port (exit status 42)\n");
  });

  it("a reset request exits 0 and stops the guest", () => {
    const r = vmm(["run", "-k", guests.reset!]);
    expect(r.stdout).toContain("resetting via i8042");
    expect(r.stdout).not.toContain("still running");
    expect(r.status).toBe(0);
  });

  it("an emulation failure exits non-zero with one clear line", () => {
    const r = vmm(["run", "-k", guests["emulation-failure"]!]);
    expect(r.status).toBe(1);
    const lines = r.stderr.trimEnd().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^vmm: error: .*(emulat|internal)/i);
  });

  it("-p and -i reach the machine (which passes them to bzImage kernels only, and says so)", () => {
    const initrd = path.join(tmp, "initrd.img");
    writeFileSync(initrd, new Uint8Array(4096));
    const r = vmm(["run", "-k", guests.hello!, "-p", "console=ttyS0", "-i", initrd, "--name", "p"]);
    expect(r.status).toBe(0);
    expect(r.stderr).toBe("vmm: warning: p: a command line is only passed to bzImage kernels; ignored\n");
  });

  it("--stats prints the machine's exit and interrupt counters when the guest stops", () => {
    const r = vmm(["run", "-k", guests.hello!, "--name", "st", "--stats"]);
    expect(r.status).toBe(0);
    const m = /^vmm: stats: st: pioExits=(\d+) mmioExits=(\d+) msiSignals=(\d+) msiFallbacks=(\d+)$/m.exec(r.stderr);
    expect(m, r.stderr).not.toBeNull();
    // The greeting goes out through COM1, a port write per byte.
    expect(Number(m![1])).toBeGreaterThanOrEqual("Hello from guest-kit".length);
    expect(Number(m![3])).toBe(0);
  });

  it("two vCPUs and more memory are accepted", () => {
    const r = vmm(["run", "-k", guests.hello!, "-c", "2", "-m", "1G"]);
    expect(r.status).toBe(0);
  });

  it("more vCPUs than KVM allows is a clear runtime error", () => {
    const r = vmm(["run", "-k", guests.hello!, "-c", "64"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^vmm: error: 64 vCPUs asked for, but this host's KVM allows at most \d+\n$/);
  });

  it("--verbose prints the machine and every PCI function with its address, IDs and placement", () => {
    const disk = path.join(tmp, "verbose.img");
    writeFileSync(disk, new Uint8Array(64 * 1024));
    const r = vmm(["run", "-k", guests.hello!, "--name", "vb", "--verbose", "-d", disk, "--rng", "--device", "pcie-root-port,id=rp1", "--device", "virtio-rng,bus=rp1"]);
    expect(r.stdout).toMatch(/^Hello from guest-kit/);
    expect(r.stderr.trimEnd().split("\n")).toEqual([
      `vmm: vb: x86_64, 256 MiB RAM, 1 vCPU, elf64 kernel ${guests.hello}, console serial`,
      "vmm: 00:00.0 host-bridge (8086:29c0) pci",
      `vmm: 00:01.0 virtio-blk0 virtio-blk (1af4:1042) pci path=${disk}`,
      "vmm: 00:02.0 virtio-rng0 virtio-rng (1af4:1044) pci",
      "vmm: 00:03.0 rp1 pcie-root-port (1b36:000c) pcie root-port id=rp1",
      "vmm: 01:00.0 virtio-rng1 virtio-rng (1af4:1044) pcie endpoint behind rp1 bus=rp1",
    ]);
    expect(r.status).toBe(0);
  });

  it("--idle-notice: a silent guest is said to still run, again when the silence doubles, never while it prints", async () => {
    // guests/echo.c waits silently for bytes on COM1 and answers each with a line; 'q' ends it.
    const child = spawn(process.execPath, [bin, "run", "-k", guests.echo!, "--name", "quiet", "--idle-notice", "1"], { cwd: cliDir });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
    const notices = () => stderr.split("\n").filter(Boolean);
    const waitFor = async (what: () => boolean, label: string) => {
      for (let i = 0; i < 300 && !what() && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 50));
      expect(what(), `${label}; stdout: ${stdout}; stderr: ${stderr}`).toBe(true);
    };
    await waitFor(() => stdout.includes("echo: ready"), "the guest started");
    await waitFor(() => notices().length === 2, "two notices, after 1 s and 2 s of silence");
    // Output flows for 2.5 s, a line every 150 ms: no notice.
    for (let i = 0; i < 16; i++) {
      child.stdin.write("x");
      await new Promise((r) => setTimeout(r, 150));
    }
    await waitFor(() => (stdout.match(/echo: got x/g) ?? []).length === 16, "the guest answered every byte");
    expect(notices()).toHaveLength(2);
    // Silent again: the schedule started over, the next notice comes after 1 s.
    await waitFor(() => notices().length === 3, "a notice 1 s after the output stopped");
    child.stdin.write("q");
    expect(await exited).toBe(0);
    const line = (s: number) => `vmm: guest quiet still running, no output for ${s} s (Ctrl-C or SIGTERM stops it)`;
    expect(notices()).toEqual([line(1), line(2), line(1)]);
    expect(stdout).toContain("echo: bye");
  }, 60_000);

  it("a plugin device shows up on the guest's PCI bus, and --debug traces its config accesses", () => {
    const r = vmm(["run", "-k", guests["pci-ecam"]!, "--plugin", fixture, "--device", "fixture-dev,id=7", "--debug"]);
    expect(r.stdout).toMatch(/^pci 00:[0-9a-f]{2}\.0 id 1234abcd /m);
    expect(r.stderr).toMatch(/^vmm: debug: fixture-dev0: config read 0x0\/4 -> 0x1234abcd$/m);
    expect(r.stderr).toMatch(/^vmm: debug: vCPU 0: pio out1 0x3f8 = 0x/m);
    expect(r.status).toBe(0);
  });

  it("a device that throws while the guest runs is named, the VM stops cleanly and devices are closed", () => {
    const marker = path.join(tmp, "fault-closed");
    const r = vmm(["run", "-k", guests["pci-ecam"]!, "--plugin", fixture, "--device", `fixture-dev,id=7,mode=explode-config,marker=${marker}`]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe("vmm: error: device fixture-dev0 failed in config read at 0x0: config space melted\n");
    // The VM stopped inside that exit: the guest never got to its summary line.
    expect(r.stdout).not.toContain("mismatches");
    expect(readFileSync(marker, "utf8")).toBe("closed fixture-dev0\n");
  });

  it("two devices claiming the same address fail in one line", () => {
    const r = vmm(["run", "-k", guests.hello!, "--plugin", fixture, "--device", "fixture-dev,id=1,port=0x700", "--device", "fixture-dev,id=2,port=0x700"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe("vmm: error: pio: fixture-dev1 [0x700, +0x4) overlaps fixture-dev0\n");
  });

  it("a device claiming a port of the machine's own devices fails in one line", () => {
    const r = vmm(["run", "-k", guests.hello!, "--plugin", fixture, "--device", "fixture-dev,id=1,port=0x3f8"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^vmm: error: pio: fixture-dev0 \[0x3f8, \+0x4\) overlaps serial0 \(16550A\)\n$/);
  });

  it("the shorthands create working built-in devices: -d, -n socket, --rng, --console virtio", () => {
    const disk = path.join(tmp, "disk.img");
    const seed = path.join(tmp, "seed.img");
    writeFileSync(disk, new Uint8Array(64 * 1024));
    writeFileSync(seed, new Uint8Array(64 * 1024));
    const r = vmm(["run", "-k", guests["pci-ecam"]!, "-d", disk, "-d", `${seed},ro`, "-n", `socket,path=${path.join(tmp, "net.sock")}`, "--rng", "--console", "virtio"]);
    expect(r.stderr).toBe("");
    for (const id of ["10421af4", "10411af4", "10441af4", "10431af4"]) expect(r.stdout).toMatch(new RegExp(`^pci 00:[0-9a-f]{2}\\.0 id ${id} `, "m"));
    expect(r.stdout.match(/id 10421af4/g)).toHaveLength(2);
    expect(r.status).toBe(0);
  });

  it("one image given twice is refused in one line naming the image, since two writers would corrupt it", () => {
    const disk = path.join(tmp, "twice.img");
    writeFileSync(disk, new Uint8Array(64 * 1024));
    const r = vmm(["run", "-k", guests.hello!, "-d", disk, "-d", `${disk},ro`]);
    expect(r.status).toBe(1);
    expect(r.stderr.split("\n")).toHaveLength(2);
    expect(r.stderr).toContain(`disk image ${disk} is in use: this process`);
  });

  it("-n tap with a bad interface name is refused in one line, before any tap is created", () => {
    const r = vmm(["run", "-k", guests.hello!, "-n", "tap,ifname=bad/name"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^vmm: error: virtio-net0: tap bad\/name: cannot attach: tap interface name 'bad\/name' must be at most 15 bytes[^\n]*\n$/);
  });

  it("a device that throws while the bus programs its BARs is named with its own error", () => {
    const marker = path.join(tmp, "attach-closed");
    const r = vmm(["run", "-k", guests.hello!, "--plugin", fixture, "--device", `fixture-dev,id=1,mode=explode-bar-write,marker=${marker}`]);
    expect(r.stderr).toBe("vmm: error: device fixture-dev0 failed in config write at 0x10: BAR0 register welded shut\n");
    expect(r.status).toBe(1);
    expect(r.stdout).not.toContain("Hello");
    expect(readFileSync(marker, "utf8")).toBe("closed fixture-dev0\n");
  });

  it("SIGINT while devices are created closes those already created", async () => {
    const marker = path.join(tmp, "early-closed");
    writeFileSync(marker, "");
    const args = ["run", "-k", guests.hello!, "--name", "early", "--plugin", fixture, "--plugin", fixturePlugin("bad-device.mjs")];
    const child = spawn(process.execPath, [bin, ...args, "--device", `fixture-dev,id=1,marker=${marker}`, "--device", "create-hangs"], { cwd: cliDir });
    let stdout = "";
    let stderr = "";
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
    await new Promise<void>((resolve) =>
      child.stdout.on("data", (c: Buffer) => {
        stdout += c.toString();
        if (stdout.includes("creating create-hangs0")) resolve();
      }),
    );
    child.kill("SIGINT");
    expect(await exited).toBe(130);
    expect(stderr).toBe("vmm: early: stopped by SIGINT\n");
    expect(readFileSync(marker, "utf8")).toBe("closed fixture-dev0\n");
  });

  it.each([
    ["SIGHUP", 129],
    ["SIGINT", 130],
    ["SIGQUIT", 131],
    ["SIGTERM", 143],
  ] as const)("%s stops a running guest cleanly and flushes devices", async (signal, status) => {
    const marker = path.join(tmp, `${signal}-closed`);
    writeFileSync(marker, "");
    const child = spawn(process.execPath, [bin, "run", "-k", guests.spin!, "--name", "spinner", "--plugin", fixture, "--device", `fixture-dev,id=1,marker=${marker}`], { cwd: cliDir });
    let stdout = "";
    let stderr = "";
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
    await Promise.race([
      exited,
      new Promise<void>((resolve) =>
        child.stdout.on("data", (c: Buffer) => {
          stdout += c.toString();
          if (stdout.includes("spinning")) resolve();
        }),
      ),
    ]);
    child.kill(signal);
    const code = await exited;
    expect(stdout).not.toContain("spin done");
    expect(code).toBe(status);
    expect(stderr).toBe(`vmm: spinner: stopped by ${signal}\n`);
    expect(readFileSync(marker, "utf8")).toBe("closed fixture-dev0\n");
  });
});

const MEMTEST = "/boot/memtest86+x64.bin";
if (kvmOk && !existsSync(MEMTEST)) {
  console.warn(`\n${"!".repeat(78)}\n!! @vmm/cli: memtest86+ boot test SKIPPED: ${MEMTEST} is missing (apt-get install -y memtest86+)\n${"!".repeat(78)}\n`);
}

describe.skipIf(!kvmOk || !existsSync(MEMTEST))("memtest86+ (its setup header has no payload hints)", () => {
  // Where every instruction is emulated (docs/host-kvm.md) memtest86+ stops at its first FPU instruction (fninit)
  // before it prints; elsewhere it prints on COM1 and runs until killed. Either way its own code ran from the
  // 64-bit entry, where before it was refused with "payload lies outside the file".
  it("is loaded and runs its own code: it prints on the serial console or stops inside its image", async () => {
    const child = spawn(process.execPath, [bin, "run", "-k", MEMTEST, "-p", "console=ttyS0,115200", "-m", "256"], { cwd: cliDir });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString("latin1")));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
    const bound = setTimeout(() => child.kill("SIGTERM"), 20_000);
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && !stdout && child.exitCode === null) await new Promise((r) => setTimeout(r, 100));
    if (stdout) child.kill("SIGTERM");
    const code = await exited;
    clearTimeout(bound);
    expect(stderr).not.toMatch(/payload lies outside the file/);
    if (stdout) return; // it printed: far enough
    const m = /emulation failure\) at RIP 0x([0-9a-f]+)/.exec(stderr);
    expect(m, `neither serial output nor an emulation failure; exit ${code}, stderr: ${stderr}`).not.toBeNull();
    const rip = parseInt(m![1]!, 16);
    expect(rip).toBeGreaterThanOrEqual(0x100200);
    expect(rip).toBeLessThan(0x100000 + statSync(MEMTEST).size);
  }, 30_000);
});

describe.skipIf(!kvmOk)("the README demo", () => {
  it("node scripts/demo.mjs lists the bus and reads from virtio-rng and virtio-blk", async () => {
    const { spawnSync } = await import("node:child_process");
    // A private TMPDIR: the demo's disk (TMPDIR/vmm-demo/disk.img, locked while a VM uses it) is not the one
    // tests/readme's run of `pnpm demo` may be using at the same moment.
    const env = { ...process.env, TMPDIR: mkdtempSync(path.join(tmpdir(), "vmm-demo-test-")) };
    const r = spawnSync(process.execPath, [path.join(cliDir, "scripts/demo.mjs")], { cwd: cliDir, encoding: "utf8", timeout: 120_000, env });
    // Nothing on stderr but guest-kit's line when the demo guest is not in its cache yet (a fresh clone).
    expect(r.stderr.split("\n").filter((l) => l && !/^guest-kit: compiling guest program demo \(elf\), not in the cache yet: /.test(l))).toEqual([]);
    expect(r.stdout).toMatch(/^ {2}00:00\.0 {2}8086:29c0 {2}class 060000 {2}host bridge$/m);
    expect(r.stdout).toMatch(/^ {2}00:[0-9a-f]{2}\.0 {2}1af4:1042 {2}class \w+ {2}virtio-blk$/m);
    expect(r.stdout).toMatch(/^ {2}00:[0-9a-f]{2}\.0 {2}1af4:1044 {2}class \w+ {2}virtio-rng$/m);
    expect(r.stdout).toMatch(/^virtio-rng: [0-9a-f]{32}$/m);
    expect(r.stdout).not.toMatch(/^virtio-rng: 0{32}$/m);
    expect(r.stdout).toContain('virtio-blk: 128 sectors; sector 0 says "Hello from a virtio-blk disk image written by pnpm demo"');
    expect(r.status).toBe(0);
  }, 120_000);
});
