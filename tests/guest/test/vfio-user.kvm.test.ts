/**
 * Passthrough proven through vfio-user: `vmm run --device vfio-user,socket=...` against the repository's test
 * server (tools/vfio-user-server, a separate process written independently of the client) with guests/vfio-user.c
 * as the guest driver, under the real /dev/kvm.
 */
import { buildGuest } from "@vmm/guest-kit";
import { DEVICES } from "@vmm/vfio-user-server";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { kvmOk } from "./support.js";
import { type DeviceServer, runVmm, startServer, statsOf, vfioUserMissing } from "./vfio-user-support.js";
import { fileURLToPath } from "node:url";

const missing = vfioUserMissing();
if (kvmOk && missing) console.warn(`\n*** @vmm/guest-tests: SKIPPING the vfio-user guest tests: ${missing} ***\n`);
const guestSource = join(fileURLToPath(new URL(".", import.meta.url)), "..", "guests", "vfio-user.c");

let guest = "";
const servers: DeviceServer[] = [];
async function serve(device: string): Promise<DeviceServer> {
  const s = await startServer(device);
  servers.push(s);
  return s;
}

/** Runs the guest driver against `device`, placed as `placement` says (default: conventional PCI on bus 0). */
async function drive(device: string, placement?: string) {
  const server = await serve(device);
  const spec = `vfio-user,socket=${server.socket}${placement ? `,placement=${placement}` : ""}`;
  const run = await runVmm(["run", "-k", guest, "--device", spec, "--stats", "--name", "vu"]);
  if (run.status !== 0 || run.stdout.includes("FAIL")) console.log(run.stdout, run.stderr);
  expect(run.stdout).not.toContain("FAIL");
  expect(run.stdout).toMatch(/^vfio-user: \d+ checks, 0 failures$/m);
  expect(run.status).toBe(0);
  const stats = statsOf(run.stderr);
  return { ...run, machine: stats.get("vu")!, device: stats.get("vfio-user0")! };
}

describe.skipIf(!kvmOk || missing !== undefined)("a guest driver uses devices served over vfio-user (vmm run --device vfio-user)", () => {
  beforeAll(async () => {
    guest = await buildGuest("vfio-user", { format: "elf", source: guestSource });
  }, 120_000);

  afterEach(async () => {
    for (const s of servers.splice(0)) await s.stop();
  });

  it("rtl8168: capabilities at the chip's offsets, DMA both ways, MSI-X through irqfd with no userspace hop, MSI, INTx after MSI-X", async () => {
    const r = await drive("rtl8168");
    expect(r.stdout).toMatch(/^vfio: rtl8168 10ec:8168 at 00:[0-9a-f]{2}\.0 class 020000$/m);
    expect(r.stdout).toContain("pcie none"); // conventional placement: the PCI Express capability is hidden
    expect(r.stdout).toMatch(/^bar0 io size 100\nbar2 mem64 size 1000\nbar4 mem64 size 4000$/m);
    expect(r.stdout).toContain("dma ok");
    expect(r.stdout).toContain("msix-delivered 200");
    expect(r.stdout).toMatch(/^intx-delivered 20 /m);
    // The two interrupts the guest raised on purpose while their vector was masked (pending bit, function mask)
    // are the only ones that passed through vmm; the 200+ others went from the server's eventfd into KVM.
    expect(r.device.userspaceInterrupts).toBe(2);
    expect(r.machine.msiSignals).toBe(0);
    expect(r.machine.msiFallbacks).toBe(0);
  });

  it("nvme: MSI-X table inside the register BAR, a 64-bit BAR at index 3 mmapped (its accesses never leave the guest, across moves and decode toggles)", async () => {
    const r = await drive("nvme");
    expect(r.stdout).toMatch(/^bar0 mem64 size 4000\nbar3 mem64 size 100000$/m);
    expect(r.stdout).toContain("msix 8 vectors table bar0+2000 pba bar0+3000");
    expect(r.stdout).toContain("mmap accesses 4096");
    expect(r.stdout).toContain("mmap ok");
    // Over 4,100 accesses to the mmapped BAR (4,096 in the loop alone): had any of them trapped, the machine's
    // MMIO exits and the device's trapped accesses would each exceed 4,096.
    expect(r.machine.mmioExits).toBeLessThan(2000);
    expect(r.device.trappedReads + r.device.trappedWrites).toBeLessThan(1000);
    expect(r.device.userspaceInterrupts).toBe(2);
    expect(r.machine.msiSignals).toBe(0);
  });

  it("subpage-rom: a 256-byte BAR trapped, MSI, and the expansion ROM read back byte-exact through the ROM BAR", async () => {
    const r = await drive("subpage-rom");
    expect(r.stdout).toMatch(/^bar0 mem32 size 100\nbar1 io size 40$/m);
    expect(r.stdout).toContain("msi-delivered 20");
    const rom = DEVICES["subpage-rom"]().rom!;
    const want = crc32(rom).toString(16).padStart(8, "0");
    expect(r.stdout).toContain(`rom crc32 ${want} size ${rom.length.toString(16)}`);
  });

  it("intx-only: INTx with the device unmasked after each EOI, and the command register's INTx disable", async () => {
    const r = await drive("intx-only");
    expect(r.stdout).toMatch(/^intx-delivered 20 raised 20 /m);
    expect(r.stdout).toContain("intx ok");
    // Each EOI unmasked the device with an UNMASK message (vfio-user has no resample eventfd in the kernel's sense).
    expect(r.device.intxUnmasks).toBeGreaterThanOrEqual(20);
  });

  it("the PCI Express capability says where the bus placed the device: endpoint behind a root port, RC integrated endpoint on bus 0", async () => {
    const behind = await drive("rtl8168", "root-port");
    expect(behind.stdout).toMatch(/^vfio: rtl8168 10ec:8168 at 01:00\.0 /m);
    expect(behind.stdout).toContain("pcie type 0");
    expect(behind.stdout).toMatch(/^ecap 0001 at 100\necap 0002 at 140\necap 0003 at 160$/m);
    const integrated = await drive("nvme", "integrated");
    expect(integrated.stdout).toMatch(/^vfio: nvme 144d:a808 at 00:[0-9a-f]{2}\.0 /m);
    expect(integrated.stdout).toContain("pcie type 9");
  });

  it("a server that dies stops the VM with one line naming it", async () => {
    const server = await serve("nvme");
    let killed = false;
    const r = await runVmm(["run", "-k", guest, "--device", `vfio-user,socket=${server.socket}`], (out) => {
      if (!killed && out.includes("dma ok")) {
        killed = true;
        server.process.kill("SIGKILL");
      }
    });
    expect(killed).toBe(true);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`vmm: error: device vfio-user0 failed in its backend: vfio-user server ${server.socket} closed the connection\n`);
  });

  it("a socket nobody serves is one clear line", async () => {
    const r = await runVmm(["run", "-k", guest, "--device", "vfio-user,socket=/nonexistent/vfio.sock"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe("vmm: error: vfio-user: cannot connect to /nonexistent/vfio.sock (ENOENT): is the device server running?\n");
  });
});
