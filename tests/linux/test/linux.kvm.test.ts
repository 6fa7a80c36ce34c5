// Linux as the judge: the test kernel boots to userspace under `vmm run` and its own drivers (PCI core over
// MMCONFIG, virtio-pci, virtio-blk, virtio-rng, virtio-console) use every device. Each boot takes about a minute
// here, so one boot runs many checks and the assertions read its report.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Layout } from "@vmm/machine";
import { decodePng, kvmSkipBanner } from "@vmm/test-support";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { bootLinux, parsePci, sectorPattern, type BootOptions, type BootResult } from "../src/boot.js";

const guest = inject("linuxGuest");
if (!guest.ok) console.warn(kvmSkipBanner("@vmm/linux-tests", "Linux guest tests", guest.reason));

const tmp = mkdtempSync(join(tmpdir(), "vmm-linux-"));
const MiB = 1024 * 1024;
const SEED_TEXT = "read-only seed disk for the Linux test";
const VIRTIO_VENDOR = 0x1af4;

function disks(tag: string): { disk: string; seed: string } {
  const disk = join(tmp, `${tag}-disk.img`);
  const seed = join(tmp, `${tag}-seed.img`);
  writeFileSync(disk, new Uint8Array(16 * MiB));
  const seedBytes = new Uint8Array(MiB);
  seedBytes.set(Buffer.from(SEED_TEXT));
  writeFileSync(seed, seedBytes);
  return { disk, seed };
}

/** Serial lines of the kernel log that report trouble with the PCI bus or a driver. */
function troubleLines(serial: string): string[] {
  return serial
    .split("\n")
    .filter((l) => /\bpci\b|virtio|PCI|MSI/i.test(l) || /WARNING|BUG:|Call Trace|Oops/.test(l))
    .filter((l) => /error|fail|can't|cannot|invalid|conflict|no space|WARNING|BUG:|Call Trace|Oops/i.test(l))
    // A function without an INTx pin is not trouble.
    .filter((l) => !/no IRQ|pin 0/.test(l));
}

/** Keeps a boot's serial log beside the test's disks and says where, for a failure's message. */
function saveLog(tag: string, r: BootResult): string {
  const path = join(tmp, `${tag}-serial.log`);
  writeFileSync(path, r.serial);
  return `serial log: ${path}; last lines:\n${r.serial.slice(-1500)}`;
}

function expectClean(r: BootResult, log: string): void {
  expect(r.timedOut, log).toBe(false);
  expect(r.report.at(-1), log).toBe("done failures=0");
  expect(r.status, r.stderr).toBe(0);
  expect(r.report.filter((l) => l.startsWith("FAIL"))).toEqual([]);
  expect(troubleLines(r.serial)).toEqual([]);
  // The kernel found the VMM's PM timer; the TSC runs at the frequency KVM reports (given as tsc_early_khz when KVM
  // can say: PM-timer calibration fails on most boots of a busy emulating host, src/tsc.ts) and is trusted. (Linux's
  // acpi_pm clocksource check may still give up when two back-to-back reads land 3 ms apart on a loaded host.)
  expect(r.serial).toMatch(/ACPI: PM-Timer IO Port: 0x608/);
  expect(r.serial).toMatch(/tsc: Detected \d+\.\d+ MHz processor/);
  expect(r.serial).not.toMatch(/Marking TSC unstable/);
}

function interrupts(r: BootResult): string[] {
  return r.report.filter((l) => l.startsWith("interrupts ")).map((l) => l.slice("interrupts ".length));
}

/** The count and the chip of each /proc/interrupts line whose action names `name`. */
function interruptLine(r: BootResult, name: RegExp): { count: number; chip: string } | undefined {
  const line = interrupts(r).find((l) => name.test(l));
  const m = line && /^\s*\d+:\s+(\d+)\s+(\S+)/.exec(line);
  return m ? { count: Number(m[1]), chip: m[2]! } : undefined;
}

type GuestOptions = Omit<BootOptions, "bzImage" | "initramfs" | "timeoutMs">;

/** Boots once in the block's beforeAll; its tests read `boot.r`, and `boot.log` says where the serial log went. */
function bootBeforeAll(tag: string, options: () => GuestOptions, after?: () => void): { r: BootResult; log: string } {
  const boot = { r: undefined as unknown as BootResult, log: "" };
  beforeAll(async () => {
    const g = guest as { ok: true; bzImage: string; initramfs: string };
    try {
      boot.r = await bootLinux({ bzImage: g.bzImage, initramfs: g.initramfs, timeoutMs: 200_000, ...options() });
    } finally {
      after?.();
    }
    boot.log = saveLog(tag, boot.r);
  }, 420_000);
  return boot;
}

describe.skipIf(!guest.ok)("Linux 6.1 boots under vmm and drives every device with its own drivers", () => {
  describe("with MSI-X", () => {
    const { disk, seed } = disks("msix");
    const consoleSocket = join(tmp, "console.sock");
    let hostHeard = "";
    let hostEnd: Socket | undefined;
    const answer = () => {
      hostEnd = connect(consoleSocket);
      hostEnd.on("error", () => {});
      let answered = false;
      hostEnd.on("data", (d) => {
        hostHeard += d.toString();
        // Once: hvc0 is a tty that echoes what the host sends.
        if (!answered && hostHeard.includes("\n")) {
          answered = true;
          hostEnd!.write("hello from the host\n");
        }
      });
    };
    const boot = bootBeforeAll(
      "msix",
      () => ({
        vmmArgs: ["-m", "256M", "-d", disk, "-d", `${seed},ro`, "--rng", "--device", `virtio-console,backend=socket,path=${consoleSocket}`],
        checks: ["pci", "rng", "blk-write:vda:2048", "blk-read:vdb", "blk-ro:vdb", "console", "rescan:0000:00:01.0", "blk-write:vda:4096", "interrupts"],
        // A retried boot is a new vmm with a new socket: the previous connection and what it heard go.
        onBoot: () => {
          hostEnd?.destroy();
          hostEnd = undefined;
          hostHeard = "";
        },
        // The console socket exists once vmm is up; connect when the kernel starts talking.
        onLine: (line) => {
          if (!hostEnd && line.includes("Linux version")) answer();
        },
      }),
      () => hostEnd?.destroy(),
    );

    it("reaches userspace and its init finishes every check, with no PCI or driver errors in the kernel log and no clock parameters", () => {
      expectClean(boot.r, boot.log);
      console.info(`[linux] userspace ${((boot.r.userspaceMs ?? 0) / 1000).toFixed(1)} s after vmm started`);
    });

    it("enumerates over MMCONFIG exactly the functions vmm created, with their IDs, classes and BARs inside the root bridge window", () => {
      expect(boot.r.serial).toMatch(/PCI: Using configuration type 1 for base access|PCI: MMCONFIG at \[mem 0xe0000000/);
      const fns = parsePci(boot.r.report);
      expect(fns.map((f) => [f.bdf, f.vendor, f.device, f.classCode, f.driver])).toEqual([
        ["0000:00:00.0", 0x8086, 0x29c0, 0x060000, "none"],
        ["0000:00:01.0", VIRTIO_VENDOR, 0x1042, 0x018000, "virtio-pci"],
        ["0000:00:02.0", VIRTIO_VENDOR, 0x1042, 0x018000, "virtio-pci"],
        ["0000:00:03.0", VIRTIO_VENDOR, 0x1044, 0xff0000, "virtio-pci"],
        ["0000:00:04.0", VIRTIO_VENDOR, 0x1043, 0x078000, "virtio-pci"],
      ]);
      const lo = BigInt(Layout.pciMem32.base);
      const hi = lo + BigInt(Layout.pciMem32.size);
      for (const f of fns.slice(1)) {
        // virtio-pci: BAR1 holds the capabilities' structures, BAR2 the MSI-X table and PBA.
        expect(f.bars.map((b) => b.index), f.bdf).toEqual([1, 2]);
        for (const b of f.bars) {
          expect(b.start >= lo && b.end < hi, `${f.bdf} BAR${b.index}`).toBe(true);
          const size = b.end - b.start + 1n;
          expect(b.start % size, `${f.bdf} BAR${b.index} is aligned to its size`).toBe(0n);
        }
      }
    });

    it("virtio-blk: a pattern written through /dev/vda and flushed is on the host's image, also after the function was removed and rescanned", () => {
      expect(boot.r.report).toContain("blk-write vda lba=2048 bytes=8192 ok");
      expect(boot.r.report).toContain("rescan 0000:00:01.0 ok");
      expect(boot.r.report).toContain("blk-write vda lba=4096 bytes=8192 ok");
      const image = readFileSync(disk);
      for (const lba of [2048, 4096]) {
        expect(Buffer.compare(image.subarray(lba * 512, lba * 512 + 8192), Buffer.from(sectorPattern(lba, 8192))), `LBA ${lba}`).toBe(0);
      }
      // Nothing else was written.
      expect(image.subarray(0, 2048 * 512).every((b) => b === 0)).toBe(true);
    });

    it("virtio-blk read-only: Linux reads the seed disk and refuses to write it", () => {
      const read = boot.r.report.find((l) => l.startsWith("blk-read vdb "));
      expect(read).toBe(`blk-read vdb size=${MiB} head=${Buffer.concat([Buffer.from(SEED_TEXT), Buffer.alloc(64 - SEED_TEXT.length)]).toString("hex")}`);
      const ro = boot.r.report.find((l) => l.startsWith("blk-ro vdb "));
      // Opening may succeed, but the write fails (EPERM); nothing reaches the image.
      expect(ro).toMatch(/^blk-ro vdb open-for-write=(-1[0-9]|-30|0 write=-1 fsync=0)$/);
      expect(readFileSync(seed).subarray(0, SEED_TEXT.length).toString()).toBe(SEED_TEXT);
    });

    it("virtio-rng: /dev/hwrng is backed by virtio_rng and delivers bytes", () => {
      const line = boot.r.report.find((l) => l.startsWith("rng "));
      expect(line).toMatch(/^rng current=virtio_rng\.0 bytes=[0-9a-f]{64}$/);
      expect(line).not.toMatch(/bytes=0{64}$/);
    });

    it("virtio-console: hvc0 carries a line each way", () => {
      // The tty's output processing turns the guest's "\n" into "\r\n".
      expect(hostHeard).toMatch(/^hello from the guest on hvc0\r\n/);
      expect(boot.r.report).toContain("console received=hello from the host");
    });

    it("interrupts: every virtqueue that completed work raised its own MSI-X vector", () => {
      for (const queue of [/virtio0-req\.0/, /virtio2-input/, /virtio3-input/]) {
        const line = interruptLine(boot.r, queue);
        expect(line, String(queue)).toBeDefined();
        expect(line!.chip, String(queue)).toBe("PCI-MSI");
        expect(line!.count, String(queue)).toBeGreaterThan(0);
      }
      expect(interrupts(boot.r).some((l) => /IO-APIC.*virtio/.test(l))).toBe(false);
    });
  });

  describe("with pci=nomsi (INTx) and a BAR reassignment Linux asks for", () => {
    const { disk, seed } = disks("intx");
    const boot = bootBeforeAll("intx", () => ({
      vmmArgs: ["-m", "256M", "-d", disk, "-d", `${seed},ro`, "--rng"],
      // 1 MiB alignment for 00:02.0: Linux releases its BARs and assigns new ones before the driver binds.
      kernelArgs: ["pci=nomsi,resource_alignment=20@0000:00:02.0"],
      checks: ["pci", "rng", "blk-write:vda:2048", "blk-read:vdb", "interrupts"],
    }));

    it("finishes every check with no PCI or driver errors", () => {
      expectClean(boot.r, boot.log);
    });

    it("moves 00:02.0's BARs to 1 MiB-aligned addresses, and the disk behind it still reads", () => {
      const moved = parsePci(boot.r.report).find((f) => f.bdf === "0000:00:02.0")!;
      expect(moved.bars.length).toBe(2);
      for (const b of moved.bars) expect(b.start % BigInt(MiB), `BAR${b.index}`).toBe(0n);
      expect(boot.r.report.find((l) => l.startsWith("blk-read vdb "))).toMatch(new RegExp(`size=${MiB} head=${Buffer.from(SEED_TEXT).toString("hex")}`));
    });

    it("delivers virtio interrupts on IOAPIC pins 16-19 (the DSDT's _PRT) and none by MSI", () => {
      expect(interrupts(boot.r).some((l) => /PCI-MSI/.test(l))).toBe(false);
      // /proc/interrupts: "IRQ: count IO-APIC PIN-fasteoi virtioN"; Linux numbers IRQs its own way, pins are GSIs.
      for (const dev of ["virtio0", "virtio1", "virtio2"]) {
        const line = interrupts(boot.r).find((l) => new RegExp(`\\s${dev}$`).test(l));
        expect(line, dev).toMatch(/^\s*\d+:\s+\d+\s+IO-APIC\s+1[6-9]-fasteoi\s/);
      }
      expect(interruptLine(boot.r, /\svirtio0$/)!.count).toBeGreaterThan(0);
      const image = readFileSync(disk);
      expect(Buffer.compare(image.subarray(2048 * 512, 2048 * 512 + 8192), Buffer.from(sectorPattern(2048, 8192)))).toBe(0);
    });
  });
});

describe.skipIf(!guest.ok)("Linux draws its console on the vesa device's boot framebuffer", () => {
  const png = join(tmp, "screen.png");
  const boot = bootBeforeAll("vesa", () => ({
    vmmArgs: ["-m", "256M", "--device", `vesa,display=png:${png}`],
    kernelArgs: ["console=tty0"],
    checks: ["cat:/sys/class/graphics/fb0/name", "cat:/sys/class/graphics/fb0/virtual_size"],
  }));

  it("vesafb takes the screen_info framebuffer and fbcon shows text on it, as the PNG display saw it", () => {
    expect(boot.r.report.at(-1), boot.log).toBe("done failures=0");
    expect(boot.r.serial).toMatch(/vesafb: framebuffer at 0x[0-9a-f]+, mapped to/);
    expect(boot.r.serial).toMatch(/Console: switching to colour frame buffer device \d+x\d+/);
    expect(boot.r.report).toContain("/sys/class/graphics/fb0/name VESA VGA");
    const size = /\/sys\/class\/graphics\/fb0\/virtual_size (\d+),(\d+)/.exec(boot.r.report.join("\n"));
    const image = decodePng(readFileSync(png));
    expect([image.width, image.height]).toEqual([Number(size![1]), Number(size![2])]);
    // Text, not a blank or filled screen: lit pixels in many 16-pixel character rows, a small share of the screen.
    const lit = (x: number, y: number) => {
      const i = (y * image.width + x) * 4;
      return image.rgba[i]! + image.rgba[i + 1]! + image.rgba[i + 2]! > 3 * 0x40;
    };
    const textRows = new Set<number>();
    let count = 0;
    for (let y = 0; y < image.height; y++) {
      for (let x = 0; x < image.width; x++) {
        if (!lit(x, y)) continue;
        count++;
        textRows.add(y >> 4);
      }
    }
    expect(textRows.size).toBeGreaterThanOrEqual(10);
    expect(count / (image.width * image.height)).toBeGreaterThan(0.005);
    expect(count / (image.width * image.height)).toBeLessThan(0.3);
  });
});

describe.skipIf(!guest.ok)("Linux enumerates a PCI Express tree: devices behind root ports, INTx through the bridge swizzle", () => {
  const { disk } = disks("pcie");
  const dev = (bdf: string, file: string) => `cat:/sys/bus/pci/devices/${bdf}/${file}`;
  const boot = bootBeforeAll("pcie", () => ({
    vmmArgs: [
      "-m", "256M",
      "--device", "pcie-root-port,id=rp1",
      "--device", `virtio-blk,path=${disk},bus=rp1`,
      "--device", "virtio-rng,placement=root-port",
    ],
    // INTx: the DSDT's _PRT names bus-0 slots only, so Linux must swizzle through the root ports itself.
    kernelArgs: ["pci=nomsi"],
    checks: [
      "pci", "rng", "blk-write:vda:2048", "interrupts",
      dev("0000:01:00.0", "current_link_speed"), dev("0000:01:00.0", "current_link_width"),
      dev("0000:00:01.0", "secondary_bus_number"), dev("0000:00:01.0", "subordinate_bus_number"),
    ],
  }));

  it("finishes every check with no PCI or driver errors", () => {
    expectClean(boot.r, boot.log);
  });

  it("finds the root ports as PCI Express bridges and the virtio functions behind them as PCIe endpoints", () => {
    const fns = parsePci(boot.r.report);
    expect(fns.map((f) => [f.bdf, f.vendor, f.device, f.classCode, f.driver])).toEqual([
      ["0000:00:00.0", 0x8086, 0x29c0, 0x060000, "none"],
      ["0000:00:01.0", 0x1b36, 0x000c, 0x060400, "none"],
      ["0000:00:02.0", 0x1b36, 0x000c, 0x060400, "none"],
      ["0000:01:00.0", VIRTIO_VENDOR, 0x1042, 0x018000, "virtio-pci"],
      ["0000:02:00.0", VIRTIO_VENDOR, 0x1044, 0xff0000, "virtio-pci"],
    ]);
    expect(boot.r.serial).toMatch(/pci 0000:00:01\.0: PCI bridge to \[bus 01\]/);
    // Linux read the endpoint's PCIe capability (link registers) through the extended config path.
    expect(boot.r.report).toContain("/sys/bus/pci/devices/0000:01:00.0/current_link_speed 2.5 GT/s PCIe");
    expect(boot.r.report).toContain("/sys/bus/pci/devices/0000:01:00.0/current_link_width 1");
    expect(boot.r.report).toContain("/sys/bus/pci/devices/0000:00:01.0/secondary_bus_number 1");
    expect(boot.r.report).toContain("/sys/bus/pci/devices/0000:00:01.0/subordinate_bus_number 1");
  });

  it("uses the disk behind the root port, and takes its INTx on the GSI the swizzle gives (00:01 INTA -> 17)", () => {
    const image = readFileSync(disk);
    expect(Buffer.compare(image.subarray(2048 * 512, 2048 * 512 + 8192), Buffer.from(sectorPattern(2048, 8192)))).toBe(0);
    expect(interrupts(boot.r).some((l) => /PCI-MSI/.test(l))).toBe(false);
    // virtio0 = 01:00.0 behind 00:01.0: its INTA is the port's INTA, slot 1 -> GSI 16 + (1 + 1 - 1) % 4 = 17.
    expect(interrupts(boot.r).find((l) => /\svirtio0$/.test(l))).toMatch(/^\s*\d+:\s+[1-9]\d*\s+IO-APIC\s+17-fasteoi\s/);
    // virtio1 = 02:00.0 behind 00:02.0 -> GSI 18.
    expect(interrupts(boot.r).find((l) => /\svirtio1$/.test(l))).toMatch(/^\s*\d+:\s+\d+\s+IO-APIC\s+18-fasteoi\s/);
  });
});
