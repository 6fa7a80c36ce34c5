/** Debian's SeaBIOS under `vmm run --firmware`: it enumerates the bus, drives virtio-blk and boots a sector. */
import { spawn, execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { kvmOk } from "./helpers/kvm.js";
import { bin, cliDir, fixtures } from "./helpers/spawn.js";

const BIOS = "/usr/share/seabios/bios.bin";
const haveBios = existsSync(BIOS);
if (kvmOk && !haveBios) console.warn(`\n*** @vmm/cli: ${BIOS} is missing (apt-get install seabios): the SeaBIOS boot tests are SKIPPED ***\n`);

const tmp = mkdtempSync(path.join(tmpdir(), "vmm-seabios-"));

/** Assembles a 16-bit fixture with binutils into a flat binary, cached by the source's content hash. */
function build16(name: string, fix?: (b: Uint8Array) => void): string {
  const source = readFileSync(path.join(fixtures, "firmware", name));
  const hash = createHash("sha256").update(source).digest("hex").slice(0, 16);
  const cache = path.join(tmpdir(), "vmm-firmware-fixtures");
  mkdirSync(cache, { recursive: true });
  const out = path.join(cache, `${name}.${hash}.bin`);
  if (existsSync(out)) return out;
  const o = path.join(tmp, `${name}.o`);
  const elf = path.join(tmp, `${name}.elf`);
  execFileSync("as", ["--32", "-o", o, path.join(fixtures, "firmware", name)]);
  execFileSync("ld", ["-m", "elf_i386", "-Ttext=0", "-e", "_start", "-o", elf, o]);
  execFileSync("objcopy", ["-O", "binary", "-j", ".text", elf, out + ".tmp"]);
  const bytes = new Uint8Array(readFileSync(out + ".tmp"));
  fix?.(bytes);
  writeFileSync(out, bytes);
  return out;
}

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  /** Milliseconds from spawning vmm to the first byte on its stdout (COM1). */
  firstByteMs: number | undefined;
}

/** A 1 MiB disk whose boot sector is tag-sector.S with its tag and action bytes patched. */
function tagDisk(sector: string, tag: string, action: "exit" | "cf9" | "i8042"): string {
  const image = new Uint8Array(1024 * 1024);
  image.set(readFileSync(sector));
  image[508] = tag.charCodeAt(0);
  image[509] = { exit: 0, cf9: 1, i8042: 2 }[action];
  const file = path.join(tmp, `tag-${tag}-${action}.img`);
  writeFileSync(file, image);
  return file;
}

/**
 * Runs vmm; `until` sees the output so far and, once it returns true, vmm gets SIGTERM. The timeout sends SIGTERM
 * too (a test that needs `until` then sees it false).
 */
function run(args: string[], timeoutMs = 60_000, until?: (stdout: string) => boolean): Promise<Run> {
  return new Promise((resolve) => {
    const started = performance.now();
    const child = spawn(process.execPath, [bin, ...args], { cwd: cliDir });
    let stdout = "";
    let stderr = "";
    let firstByteMs: number | undefined;
    child.stdout.on("data", (d: Buffer) => {
      firstByteMs ??= performance.now() - started;
      stdout += d.toString();
      if (until?.(stdout)) child.kill("SIGTERM");
    });
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGTERM"), timeoutMs);
    child.on("close", (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr, firstByteMs });
    });
  });
}

describe.skipIf(!kvmOk || !haveBios)("SeaBIOS (Debian's bios.bin) under vmm run --firmware", () => {
  let bootSector: string;
  let optionRom: string;
  let disk: string;
  beforeAll(() => {
    bootSector = build16("boot-sector.S");
    optionRom = build16("option-rom.S", (b) => {
      const sum = b.reduce((s, x) => (s + x) & 0xff, 0);
      b[b.length - 1] = (256 - sum) & 0xff;
    });
    disk = path.join(tmp, "disk.img");
    const image = new Uint8Array(1024 * 1024);
    image.set(readFileSync(bootSector));
    writeFileSync(disk, image);
  });

  it("finds every device with the BARs config space holds afterwards, drives virtio-blk in modern mode and boots the sector", async () => {
    const log = path.join(tmp, "debugcon.log");
    const r = await run(["run", "-f", BIOS, "-d", disk, "-m", "128", "--debugcon", log, "--name", "sb"]);
    const debug = readFileSync(log, "utf8");
    console.log(`SeaBIOS: ${r.firstByteMs?.toFixed(0)} ms from vmm run to the boot sector's first byte on COM1`);
    expect(debug).toContain("Running on QEMU (q35)");
    expect(debug).toContain("QEMU fw_cfg DMA interface supported");
    expect(debug).toContain("PCIe: using q35 mmconfig at 0xb0000000");
    expect(debug).toContain("found virtio-blk at 00:01.0");
    expect(debug).toContain("using modern (1.0) virtio mode");
    expect(debug).toContain("Booting from Hard Disk");
    expect(r.stdout).toMatch(/^boot sector: running\r\n/);
    expect(r.stdout).toContain("boot sector: done");
    expect(r.status).toBe(42);
    expect(r.stderr).toBe("vmm: error: sb: the guest wrote 42 to the debug-exit port (exit status 42)\n");

    // Every function SeaBIOS probed, and every BAR it mapped, as the boot sector then reads config space.
    const seen = new Map<number, { id: string; bars: number[] }>();
    for (const m of r.stdout.matchAll(/^pci 00:([0-9a-f]{2})\.0 id ([0-9a-f]{8}) bars ((?:[0-9a-f]{8} ){6})/gm)) {
      seen.set(parseInt(m[1]!, 16), { id: m[2]!, bars: m[3]!.trim().split(" ").map((h) => parseInt(h, 16)) });
    }
    expect([...seen.values()].map((d) => d.id)).toEqual(["29c08086", "10421af4"]);
    const probed = [...debug.matchAll(/^PCI: init bdf=00:([0-9a-f]{2})\.0 id=(\w{4}):(\w{4})/gm)].map((m) => `${m[3]}${m[2]}`);
    expect(probed).toEqual(["29c08086", "10421af4"]);
    const mapped = [...debug.matchAll(/^PCI: map device bdf=00:([0-9a-f]{2})\.0 +bar (\d), addr ([0-9a-f]+)/gm)];
    expect(mapped.length).toBeGreaterThanOrEqual(2);
    for (const m of mapped) {
      const bars = seen.get(parseInt(m[1]!, 16))!.bars;
      expect((bars[Number(m[2])]! & ~0xf) >>> 0, `00:${m[1]}.0 BAR${m[2]}`).toBe(parseInt(m[3]!, 16));
    }
  }, 90_000);

  it("runs an option ROM given with rom= on a device it has no driver for (virtio-rng) before booting", async () => {
    const r = await run(["run", "-f", BIOS, "-d", disk, "--device", `virtio-rng,rom=${optionRom}`, "-m", "128"]);
    expect(r.stdout).toMatch(/^option rom: hello from vmm's test ROM\r\n/);
    expect(r.stdout.indexOf("option rom: hello")).toBeLessThan(r.stdout.indexOf("boot sector: running"));
    expect(r.status).toBe(42);
  }, 90_000);

  it("boots the sector with -m 3G and -m 4G: RAM below 4 GiB ends at 2 GiB, under the ECAM window at 0xB0000000", async () => {
    const sector = tagDisk(build16("tag-sector.S"), "M", "exit");
    for (const [mem, highHex] of [["3G", "0000000040000000"], ["4G", "0000000080000000"]] as const) {
      const log = path.join(tmp, `debugcon-${mem}.log`);
      const r = await run(["run", "-f", BIOS, "-d", sector, "-m", mem, "--debugcon", log]);
      const debug = readFileSync(log, "utf8");
      expect(r.stdout, mem).toBe("sector M\r\n");
      expect(r.status, mem).toBe(42);
      expect(debug).toContain("PCIe: using q35 mmconfig at 0xb0000000");
      expect(debug).toContain("qemu/e820: addr 0x0000000000000000 len 0x0000000080000000 [RAM]");
      expect(debug).toContain(`qemu/e820: addr 0x0000000100000000 len 0x${highHex} [RAM]`);
      for (const m of debug.matchAll(/^PCI: map device bdf=\S+ +bar \d, addr ([0-9a-f]+), size ([0-9a-f]+) \[mem\]/gm)) {
        expect(parseInt(m[1]!, 16), `a BAR at ${m[1]} is in the 32-bit window above ECAM`).toBeGreaterThanOrEqual(0xc000_0000);
      }
    }
  }, 90_000);

  it.each([
    ["port 0xCF9 (SYS_RST, then SYS_RST|RST_CPU)", "cf9", "hard reset through port 0xCF9"],
    ["the i8042 (0xFE to port 0x64)", "i8042", "i8042 reset line"],
  ] as const)("a reset through %s ends the run with status 0", async (_what, action, reason) => {
    const r = await run(["run", "-f", BIOS, "-d", tagDisk(build16("tag-sector.S"), "R", action), "-m", "128", "--debug"]);
    expect(r.stdout).toBe("sector R\r\n");
    expect(r.status).toBe(0);
    expect(r.stderr).toContain(reason);
    expect(r.stderr).not.toMatch(/error/i);
  }, 90_000);

  it("--reboot: a reset through port 0xCF9 starts the machine again (the sector's line twice), then SIGTERM stops vmm with status 143", async () => {
    const twice = (out: string) => out.split("sector B\r\n").length - 1 >= 2;
    const r = await run(["run", "-f", BIOS, "-d", tagDisk(build16("tag-sector.S"), "B", "cf9"), "-m", "128", "--reboot", "--name", "rb"], 60_000, twice);
    expect(r.stdout.startsWith("sector B\r\nsector B\r\n")).toBe(true);
    expect(r.stderr).toContain("rb: the guest reset the machine (hard reset through port 0xCF9); starting again (--reboot)");
    expect(r.stderr).toContain("rb: stopped by SIGTERM");
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.status).toBe(143);
  }, 90_000);

  it("boots the first -d disk without bootindex (bus order); bootindex=1 on the second puts it first through fw_cfg's bootorder", async () => {
    const sector = build16("tag-sector.S");
    const [one, two] = [tagDisk(sector, "1", "exit"), tagDisk(sector, "2", "exit")];
    const plain = await run(["run", "-f", BIOS, "-d", one, "-d", two, "-m", "128"]);
    expect(plain.stdout).toBe("sector 1\r\n");
    const log = path.join(tmp, "debugcon-bootorder.log");
    const ordered = await run(["run", "-f", BIOS, "-d", one, "-d", `${two},bootindex=1`, "-m", "128", "--debugcon", log]);
    expect(ordered.stdout).toBe("sector 2\r\n");
    expect(ordered.status).toBe(42);
    const debug = readFileSync(log, "utf8");
    expect(debug).toContain("boot order:\n1: /pci@i0cf8/scsi@2/disk@0,0\n");
    expect(debug).toContain("Searching bootorder for: /pci@i0cf8/*@2");
  }, 90_000);

  it("refuses bootindex= without --firmware, and one that is not a number", async () => {
    const r = await run(["run", "-k", bootSector, "-d", `${disk},bootindex=1`]);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe("vmm: error: virtio-blk: bootindex= goes with --firmware (a direct boot starts the kernel)\n");
    const bad = await run(["run", "-f", BIOS, "-d", `${disk},bootindex=first`]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/bootindex needs a whole number/);
  });

  it("enumerates through a PCI Express root port, assigns its bus and windows, and boots virtio-blk behind it (also by bootindex)", async () => {
    const sector = build16("tag-sector.S");
    const [one, two] = [tagDisk(sector, "1", "exit"), tagDisk(sector, "2", "exit")];
    const log = path.join(tmp, "debugcon-root-port.log");
    const r = await run([
      "run", "-f", BIOS, "-m", "128", "--debugcon", log,
      "-d", one,
      "--device", "pcie-root-port,id=rp1",
      "--device", `virtio-blk,path=${two},bus=rp1,bootindex=1`,
    ]);
    const debug = readFileSync(log, "utf8");
    expect(debug).toMatch(/PCI: init bdf=00:0[0-9a-f]\.0 id=1b36:000c/);
    expect(debug).toMatch(/found virtio-blk at 01:00\.0/);
    expect(debug).toMatch(/PCI: map device bdf=01:00\.0 +bar 1, addr [0-9a-f]+/);
    expect(debug).toMatch(/1: \/pci@i0cf8\/pci-bridge@2\/scsi@0\/disk@0,0\n/);
    expect(r.stdout).toBe("sector 2\r\n");
    expect(r.status).toBe(42);
  }, 90_000);

  it("refuses -k with --firmware in one line", async () => {
    const r = await run(["run", "-f", BIOS, "-k", bootSector]);
    expect(r.status).toBe(2);
    expect(r.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/-k and --firmware together are not supported/);
  });
});
