// PCI passthrough over vfio-user judged by Linux: three functions of the repository's vfio-user test server
// (tools/vfio-user-server, one process per device) attached with `vmm run --device vfio-user,socket=...` in one
// boot. The test kernel has no driver for them, so what is judged is Linux's own PCI core (enumeration behind a
// root port and on bus 0, BAR sizing, capability walks through the VMM's config space) and a userspace driver in
// the init (init.c's `vfio:` check): the test engine mmapped through sysfs, a DMA into the init's own page, the
// expansion ROM and an I/O BAR read through sysfs.
import { kvmSkipBanner, startVfioUserServer, type VfioUserServer, vfioUserServerMissing } from "@vmm/test-support";
import { DEVICES } from "@vmm/vfio-user-server";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import { bootLinux, type BootResult } from "../src/boot.js";

const guest = inject("linuxGuest");
const missing = vfioUserServerMissing();
const WHAT = "Linux vfio-user passthrough test";
if (!guest.ok) console.warn(kvmSkipBanner("@vmm/linux-tests", WHAT, guest.reason));
else if (missing) console.warn(kvmSkipBanner("@vmm/linux-tests", WHAT, missing));

interface DeviceUnderTest {
  /** The server's `--device`. */
  name: string;
  /** vendor:device, as init.c's check names the function. */
  id: string;
  /** vmm's `placement=`; none is conventional PCI on bus 0. */
  placement?: "root-port" | "integrated";
  /** The BAR index and offset of the test engine (the server's README). */
  engine: { bar: number; offset: number };
}

const UNDER_TEST: readonly DeviceUnderTest[] = [
  { name: "nvme", id: "144d:a808", placement: "root-port", engine: { bar: 0, offset: 0x1000 } },
  { name: "subpage-rom", id: "8086:100e", engine: { bar: 0, offset: 0x40 } },
  { name: "rtl8168", id: "10ec:8168", placement: "integrated", engine: { bar: 2, offset: 0x800 } },
];

// Linux's resource flags (include/linux/ioport.h), as the sysfs `resource` file shows them.
const IORESOURCE_IO = 0x100;
const IORESOURCE_MEM = 0x200;
const IORESOURCE_PREFETCH = 0x2000;
const IORESOURCE_MEM_64 = 0x100000;
const ROM_INDEX = 6;

/** A BAR line as "INDEX KIND SIZE": kind io, mem32 or mem64 (+" pref"), or rom for index 6. */
function describeBar(index: number, size: number, flags: number): string {
  let kind: string;
  if (index === ROM_INDEX) kind = "rom";
  else if (flags & IORESOURCE_IO) kind = "io";
  else if (flags & IORESOURCE_MEM) kind = `${flags & IORESOURCE_MEM_64 ? "mem64" : "mem32"}${flags & IORESOURCE_PREFETCH ? " pref" : ""}`;
  else kind = `flags ${flags.toString(16)}`;
  return `${index} ${kind} ${size.toString(16)}`;
}

/** What init.c reported of one function: its address and its "vfio-WHAT BDF rest" lines by WHAT. */
interface FunctionReport {
  bdf: string;
  className: string;
  lines: Map<string, string[]>;
}

function functionReport(report: readonly string[], id: string): FunctionReport | undefined {
  const head = report.map((l) => new RegExp(`^vfio (\\S+) id=${id} class=(\\S+)$`).exec(l)).find((m) => m);
  if (!head) return undefined;
  const bdf = head[1]!;
  const lines = new Map<string, string[]>();
  for (const l of report) {
    const m = /^vfio-(\S+) (\S+) ?(.*)$/.exec(l);
    if (!m || m[2] !== bdf) continue;
    lines.set(m[1]!, [...(lines.get(m[1]!) ?? []), m[3]!]);
  }
  return { bdf, className: head[2]!, lines };
}

describe.skipIf(!guest.ok || missing !== undefined)("Linux's PCI core and a userspace driver use functions passed through over vfio-user", () => {
  const tmp = mkdtempSync(join(tmpdir(), "vmm-linux-vfio-"));
  const socket = (d: DeviceUnderTest) => join(tmp, `${d.name}.sock`);
  let servers: VfioUserServer[] = [];
  let r: BootResult;
  /** For failures: the first test gives the whole story, the others where the serial log is. */
  let log = "";
  let where = "";
  const fn = new Map<string, FunctionReport>();

  const stopServers = async () => {
    for (const s of servers.splice(0)) await s.stop();
  };

  beforeAll(async () => {
    const g = guest as { ok: true; bzImage: string; initramfs: string };
    const vmmArgs = ["-m", "256M"];
    for (const d of UNDER_TEST) vmmArgs.push("--device", `vfio-user,socket=${socket(d)}${d.placement ? `,placement=${d.placement}` : ""}`);
    r = await bootLinux({
      bzImage: g.bzImage,
      initramfs: g.initramfs,
      vmmArgs,
      checks: UNDER_TEST.map((d) => `vfio:${d.id}:${d.engine.bar}:${d.engine.offset.toString(16)}`),
      timeoutMs: 240_000,
      // A server takes one client: a retried boot (a new vmm) gets new servers on the same sockets.
      onBoot: async () => {
        await stopServers();
        for (const d of UNDER_TEST) servers.push(await startVfioUserServer(d.name, { socket: socket(d) }));
      },
    });
    const path = join(tmp, "serial.log");
    writeFileSync(path, r.serial);
    const serverErrors = servers.map((s) => s.stderr().trim() && `${s.device} server: ${s.stderr().trim()}`).filter(Boolean);
    where = `serial log: ${path}`;
    log = `${where}; vmm stderr: ${r.stderr.trim() || "(none)"}; ${serverErrors.join("; ")}\nlast lines:\n${r.serial.slice(-2000)}`;
    for (const d of UNDER_TEST) {
      const report = functionReport(r.report, d.id);
      if (report) fn.set(d.name, report);
    }
  }, 420_000);

  // The serial log stays when a test failed (its path is in the failure's message).
  let keepLog = false;
  beforeEach(({ onTestFailed }) => onTestFailed(() => void (keepLog = true)));

  afterAll(async () => {
    await stopServers();
    if (!keepLog) rmSync(tmp, { recursive: true, force: true });
  });

  const lines = (device: string, what: string): string[] => fn.get(device)?.lines.get(what) ?? [];

  it("boots to the init's end with every check passed, and the kernel log has no PCI trouble", () => {
    expect(r.timedOut, log).toBe(false);
    expect(r.report.filter((l) => l.startsWith("FAIL")), log).toEqual([]);
    expect(r.report.at(-1), log).toBe("done failures=0");
    expect(r.status, log).toBe(0);
    const trouble = r.serial
      .split("\n")
      .filter((l) => /\bpci\b|PCI/.test(l))
      .filter((l) => /error|fail|can't|cannot|invalid|conflict|no space|not assigned|WARNING|BUG:/i.test(l));
    expect(trouble).toEqual([]);
  });

  it("enumerates each function where its placement puts it: nvme behind a root port (bus 1), the others on bus 0", () => {
    expect(fn.get("nvme")?.bdf, where).toBe("0000:01:00.0");
    expect(fn.get("subpage-rom")?.bdf, where).toMatch(/^0000:00:[0-9a-f]{2}\.0$/);
    expect(fn.get("rtl8168")?.bdf, where).toMatch(/^0000:00:[0-9a-f]{2}\.0$/);
    expect([...fn.values()].map((f) => f.className)).toEqual(["0x010802", "0x020000", "0x020000"]);
    // Linux found the root port above the nvme and gave its windows the nvme's BARs.
    expect(r.serial).toMatch(/pci 0000:00:[0-9a-f]{2}\.0: PCI bridge to \[bus 01\]/);
  });

  it("sizes the BARs as the server declares them: I/O, 32-bit, 64-bit at an odd index (nvme BAR3), prefetchable, the ROM", () => {
    const bars = (device: string) =>
      lines(device, "bar").map((l) => {
        const m = /^(\d+) size=0x([0-9a-f]+) flags=0x([0-9a-f]+)$/.exec(l)!;
        return describeBar(Number(m[1]), parseInt(m[2]!, 16), parseInt(m[3]!, 16));
      });
    expect(bars("nvme"), where).toEqual(["0 mem64 4000", "3 mem64 pref 100000"]);
    expect(bars("subpage-rom")).toEqual(["0 mem32 100", "1 io 40", "6 rom 10000"]);
    expect(bars("rtl8168")).toEqual(["0 io 100", "2 mem64 1000", "4 mem64 4000"]);
  });

  it("walks the capability lists through the VMM's config space at the devices' own offsets", () => {
    // OFFSET:ID: 01 power management, 05 MSI, 10 PCI Express, 11 MSI-X, 03 VPD.
    expect(lines("nvme", "caps"), where).toEqual(["40:01 50:11 60:10 80:05"]);
    expect(lines("subpage-rom", "caps")).toEqual(["40:01 50:05"]);
    expect(lines("rtl8168", "caps")).toEqual(["40:01 50:05 70:10 b0:11 d0:03"]);
    // Extended space (OFFSET:ID:VERSION): AER, Virtual Channel, Device Serial Number; nvme has none; a
    // conventional function has no extended space at all (Linux reads 256 bytes).
    expect(lines("rtl8168", "ecaps")).toEqual(["100:0001:1 140:0002:1 160:0003:1"]);
    expect(lines("nvme", "ecaps")).toEqual(["none"]);
    expect(lines("subpage-rom", "ecaps")).toEqual([]);
    expect(lines("subpage-rom", "config")[0]).toMatch(/^size=256 /);
    expect(lines("rtl8168", "config")[0]).toMatch(/^size=4096 /);
  });

  it("shows the PCI Express type of the placement: endpoint (0) behind the root port, RC integrated endpoint (9) on bus 0, none on conventional PCI", () => {
    expect(lines("nvme", "pcie"), where).toEqual(["type=0 version=1"]);
    expect(lines("rtl8168", "pcie")).toEqual(["type=9 version=2"]);
    expect(lines("subpage-rom", "pcie")).toEqual([]);
  });

  it("lets userspace enable the function, mmap its engine through sysfs and run a DMA into guest memory", () => {
    const ids: Record<string, number> = { rtl8168: 1, nvme: 2, "subpage-rom": 3 };
    for (const d of UNDER_TEST) {
      // Memory decode and bus mastering on (I/O decode too where there is an I/O BAR).
      const command = parseInt(/^command=0x([0-9a-f]+)$/.exec(lines(d.name, "enabled")[0] ?? "")?.[1] ?? "0", 16);
      expect(command & 0x6, `${d.name}: ${where}`).toBe(0x6);
      expect(lines(d.name, "engine")).toEqual([`bar=${d.engine.bar} off=0x${d.engine.offset.toString(16)} magic=0x45545556 id=${ids[d.name]} scratch=ok`]);
      expect(lines(d.name, "dma")).toHaveLength(1);
      expect(lines(d.name, "dma")[0]).toMatch(/^phys=0x[0-9a-f]+ len=256 status=0x1 count=1 ok$/);
    }
  });

  it("reads the expansion ROM through sysfs byte-exact (the server's image's CRC-32)", () => {
    const rom = DEVICES["subpage-rom"]().rom!;
    const want = crc32(rom).toString(16).padStart(8, "0");
    expect(lines("subpage-rom", "rom"), where).toEqual([`size=0x${rom.length.toString(16)} signature=55aa crc32=${want}`]);
    expect(lines("nvme", "rom")).toEqual([]);
  });

  it("reads the rtl8168's I/O BAR through sysfs port accesses: the alias of its registers starts with the MAC address", () => {
    expect(lines("rtl8168", "io"), where).toEqual(["0 head=00e04c6800010000"]);
  });
});
