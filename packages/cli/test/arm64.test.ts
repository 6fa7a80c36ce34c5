// --arch arm64 on any host: the arm64-only options, devices that do not support arm64, and --dump-dtb, which
// writes the machine's devicetree (and, where the host cannot run arm64 guests, only that).
import { findNode, getProperty, decodeCells, decodeStringList, readDtb, type FdtNode } from "@vmm/fdt";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { hostArchitecture } from "../src/arch/index.js";
import { UsageError } from "../src/errors.js";
import { buildRunConfig } from "../src/options/run-config.js";
import { vmm } from "./helpers/spawn.js";

const tmp = mkdtempSync(path.join(tmpdir(), "vmm-arm64-"));
const X86_HOST = hostArchitecture() !== "arm64";
if (!X86_HOST) console.warn("SKIP the --dump-dtb-only tests: this host runs arm64 guests, so vmm would start the VM");

/** A minimal arm64 Image: the 64-byte header of Documentation/arm64/booting.rst (text_offset 0, 4K pages). */
function arm64Image(size = 8192): Uint8Array {
  const bytes = new Uint8Array(size);
  const v = new DataView(bytes.buffer);
  v.setBigUint64(8, 0n, true); // text_offset
  v.setBigUint64(16, BigInt(size), true); // image_size
  v.setBigUint64(24, 2n, true); // flags: little-endian, 4K pages
  v.setUint32(0x38, 0x644d5241, true); // "ARM\x64"
  return bytes;
}

const u64 = (node: FdtNode, name: string) => {
  const cells = decodeCells(getProperty(node, name)!.value);
  return cells.map((_, i) => (i % 2 ? undefined : (BigInt(cells[i]!) << 32n) | BigInt(cells[i + 1]!))).filter((x) => x !== undefined);
};

describe("arm64 options", () => {
  it("--mem-base, --irqchip and --dump-dtb go with --arch arm64 only", () => {
    expect(() => buildRunConfig({ arch: "x86_64", kernel: "k", memBase: "0x80000000" })).toThrow(
      "--mem-base applies to --arch arm64 (the x86_64 machine has a fixed memory map and describes itself with ACPI)",
    );
    expect(() => buildRunConfig({ arch: "x86_64", kernel: "k", irqchip: "gicv2", dumpDtb: "f" })).toThrow(/^--irqchip, --dump-dtb apply to --arch arm64/);
    const c = buildRunConfig({ arch: "aarch64", kernel: "k", memBase: "4G", irqchip: "gicv2m", dumpDtb: "x.dtb" });
    expect(c).toMatchObject({ arch: "arm64", memBase: 4 * 2 ** 30, irqchip: "gicv2m", dumpDtb: "x.dtb" });
    expect(() => buildRunConfig({ arch: "arm64", kernel: "k", memBase: "lots" })).toThrow(UsageError);
    expect(() => buildRunConfig({ arch: "arm64", kernel: "k", irqchip: "gicv4" })).toThrow("--irqchip 'gicv4': expected one of gicv3-its, gicv3, gicv2m, gicv2");
    // vCPU threads are the x86_64 machine's. Without --vcpu-threads or --no-vcpu-threads the machine decides
    // (threads for an SMP guest: verbose.test.ts shows what it chose); the flags are passed on as given.
    expect(buildRunConfig({ arch: "x86_64", kernel: "k", vcpuThreads: true }).vcpuThreads).toBe(true);
    expect(buildRunConfig({ arch: "x86_64", kernel: "k", cpus: "2", vcpuThreads: false }).vcpuThreads).toBe(false);
    expect(buildRunConfig({ arch: "x86_64", kernel: "k", cpus: "2" }).vcpuThreads).toBeUndefined();
    expect(buildRunConfig({ arch: "arm64", kernel: "k", cpus: "2" }).vcpuThreads).toBeUndefined();
    expect(() => buildRunConfig({ arch: "arm64", kernel: "k", vcpuThreads: true })).toThrow(
      "--vcpu-threads runs x86_64 vCPUs on threads of their own; the arm64 machine runs its vCPUs in turn",
    );
    expect(() => buildRunConfig({ arch: "arm64", firmware: "bios.bin" })).toThrow("--firmware boots x86_64 firmware (SeaBIOS); arm64 guests boot a kernel with -k");
    // --dump-dtb alone needs no kernel; a run without it does.
    expect(buildRunConfig({ arch: "arm64", dumpDtb: "x.dtb" }).kernel).toBeUndefined();
    expect(() => buildRunConfig({ arch: "arm64" })).toThrow(/no kernel given/);
  });
});

describe.skipIf(!X86_HOST)("vmm run --arch arm64 on a host that cannot run it", () => {
  it("--dump-dtb writes the devicetree of the machine the options describe, says so in one line and exits 0", () => {
    const out = path.join(tmp, "machine.dtb");
    const r = vmm(["run", "--arch", "arm64", "--dump-dtb", out, "-m", "512M", "-c", "2", "--mem-base", "0x100000000", "-p", "console=ttyS0 root=/dev/vda", "--rng", "--name", "a1"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^vmm: a1: wrote the arm64 devicetree \(\d+ bytes\) to .*machine\.dtb; this x86_64 host does not run arm64 guests, so the VM was not started\n$/);
    const { root } = readDtb(readFileSync(out));
    expect(decodeStringList(getProperty(findNode(root, "/chosen")!, "bootargs")!.value)).toEqual(["console=ttyS0 root=/dev/vda"]);
    expect(u64(findNode(root, "/memory@100000000")!, "reg")).toEqual([0x100000000n, 512n * 2n ** 20n]);
    expect(findNode(root, "/cpus")!.children.filter((c) => c.name.startsWith("cpu@"))).toHaveLength(2);
    const gic = root.children.find((c) => c.name.startsWith("interrupt-controller@"))!;
    expect(decodeStringList(getProperty(gic, "compatible")!.value)).toEqual(["arm,gic-v3"]);
    expect(findNode(root, "/pcie@40000000")).toBeDefined();
  });

  it("--irqchip gicv2 describes a GICv2 with a v2m frame; a kernel and initrd are placed and named in /chosen", () => {
    const out = path.join(tmp, "v2.dtb");
    const kernel = path.join(tmp, "Image");
    const initrd = path.join(tmp, "initrd.img");
    writeFileSync(kernel, arm64Image());
    writeFileSync(initrd, new Uint8Array(4096));
    const r = vmm(["run", "--arch", "arm64", "--irqchip", "gicv2", "--dump-dtb", out, "-k", kernel, "-i", initrd]);
    expect(r.status, r.stderr).toBe(0);
    const { root } = readDtb(readFileSync(out));
    const gic = root.children.find((c) => c.name.startsWith("interrupt-controller@"))!;
    expect(decodeStringList(getProperty(gic, "compatible")!.value)).toEqual(["arm,cortex-a15-gic"]);
    const chosen = findNode(root, "/chosen")!;
    const start = u64(chosen, "linux,initrd-start")[0]!;
    const end = u64(chosen, "linux,initrd-end")[0]!;
    expect(end - start).toBe(4096n);
    expect(start).toBeGreaterThanOrEqual(0x80000000n);
  });

  it("refuses what an arm64 guest cannot have, in one line: x86 kernels, x86-only devices, RAM over the windows, running at all", () => {
    const bin = path.join(tmp, "guest.bin");
    writeFileSync(bin, Uint8Array.of(0xf4));
    const cases: Array<[string[], number, RegExp]> = [
      [["run", "--arch", "arm64", "-k", bin], 1, /^vmm: error: kernel '.*guest\.bin' is not an arm64 Image: no "ARM\\x64" magic at 0x38 \(and not gzip-compressed\)$/],
      [["run", "--arch", "arm64", "--dump-dtb", path.join(tmp, "n.dtb"), "--device", "vesa"], 2, /^vmm: error: device vesa0: type vesa \(plugin @vmm\/device-vesa\) does not support arm64 guests; it supports x86_64$/],
      [["run", "--arch", "arm64", "--dump-dtb", path.join(tmp, "n.dtb"), "--mem-base", "0"], 1, /^vmm: error: RAM 0x0-0x10000000 overlaps the PCI I\/O window 0x0-0x10000$/],
      [["run", "--arch", "arm64", "-k", path.join(tmp, "Image")], 1, /^vmm: error: an arm64 guest runs on an arm64 host with KVM; this host is x86_64 \(--dump-dtb FILE writes the guest's devicetree without running it\)$/],
      [["run", "--arch", "arm64", "--dump-dtb", tmp], 1, /^vmm: error: .*devicetree \(--dump-dtb\).*/],
      [["run", "-k", path.join(tmp, "Image")], 1, /^vmm: error: kernel '.*Image' is an arm64 Image; run it with --arch arm64$/],
    ];
    writeFileSync(path.join(tmp, "Image"), arm64Image());
    for (const [args, status, line] of cases) {
      const r = vmm(args);
      expect(r.status, `${args.join(" ")}: ${r.stderr}`).toBe(status);
      expect(r.stderr.trimEnd().split("\n"), args.join(" ")).toHaveLength(1);
      expect(r.stderr.trimEnd()).toMatch(line);
    }
  });
});

describe("vmm devices --arch", () => {
  it("lists only the device types a guest of that architecture can use, and marks the restricted ones", () => {
    const arm = vmm(["devices", "--arch", "arm64", "--json"]);
    expect(arm.status, arm.stderr).toBe(0);
    const armTypes = (JSON.parse(arm.stdout) as Array<{ type: string }>).map((t) => t.type);
    expect(armTypes).toContain("virtio-blk");
    expect(armTypes).not.toContain("vesa");
    const all = JSON.parse(vmm(["devices", "--json"]).stdout) as Array<{ type: string; architectures?: string[] }>;
    expect(all.find((t) => t.type === "vesa")?.architectures).toEqual(["x86_64"]);
    expect(vmm(["devices"]).stdout).toMatch(/^vesa: .*\n {2}from plugin @vmm\/device-vesa \(built-in\); x86_64 guests only$/m);
  });
});
