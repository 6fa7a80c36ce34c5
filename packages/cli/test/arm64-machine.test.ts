// The arm64 machine factory: on a host that cannot run arm64 guests it refuses in one line (arm64.test.ts runs
// that through the real process); given an arm64 host and KVM (here a fake VM that answers the calls the run-time
// machine makes), `vmm run --arch arm64` builds @vmm/machine-arm64's Arm64KvmMachine, attaches the virtio devices
// the options ask for through the machine's container, and runs it until the guest's PSCI SYSTEM_OFF.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { MemoryLogger } from "@vmm/core";
import type { Arm64Kvm } from "@vmm/machine-arm64";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createArm64Machine } from "../src/arch/arm64.js";
import type { MachineConfig, VirtualMachine } from "../src/arch/machine.js";
import type { CliContext } from "../src/context.js";
import { main } from "../src/main.js";

const tmp = mkdtempSync(path.join(tmpdir(), "vmm-arm64-machine-"));

/** A minimal arm64 Image: booting.rst's 64-byte header (text_offset 0, 4K pages). */
function arm64Image(size = 8192): Uint8Array {
  const bytes = new Uint8Array(size);
  const v = new DataView(bytes.buffer);
  v.setBigUint64(16, BigInt(size), true);
  v.setBigUint64(24, 2n, true);
  v.setUint32(0x38, 0x644d5241, true);
  return bytes;
}
const kernel = path.join(tmp, "Image");
writeFileSync(kernel, arm64Image());

type Dispatch = { mmio(address: number, size: number, isWrite: boolean, lo: number, hi: number): number | bigint };
type Step = (d: Dispatch) => object | void;
const STOPPED = 5; // KVM_MP_STATE_STOPPED

/**
 * KVM as the run-time machine sees it, as plain objects: RAM as one buffer, vCPUs whose runs are scripted steps,
 * a vGIC that records its config and init. What each native call does is kvm-native's and machine-arm64's tests'.
 */
function fakeKvm(steps: Step[]) {
  const calls: string[] = [];
  const mp = new Map<number, number>();
  const vm = {
    allocateRam: (size: number) => {
      const bytes = new Uint8Array(size);
      return { size, chunks: [bytes], regions: (gpa: number) => [{ gpa, bytes }] };
    },
    setMemoryRegion: (r: { slot: number; guestPhysAddr: number }) => void calls.push(`memslot ${r.slot} at 0x${r.guestPhysAddr.toString(16)}`),
    createVcpu: (id: number) => ({
      id,
      init: (o: { powerOff?: boolean }) => (calls.push(`vcpu ${id} init powerOff=${o.powerOff}`), mp.set(id, o.powerOff ? STOPPED : 0)),
      setCoreReg: (name: string, value: number) => void calls.push(`vcpu ${id} ${name}=0x${value.toString(16)}`),
      getMpState: () => mp.get(id)!,
      run: (d: Dispatch) => steps.shift()?.(d) ?? { reason: "yield" },
      requestStop: () => {},
      close: () => {},
    }),
    hasDevice: () => true,
    createVgic: (config: { version: number }) => ({ init: () => void calls.push(`vgic v${config.version} init`), close: () => {} }),
    irqLine: () => {},
    irqfd: () => ({ remove() {} }),
    signalMsi: () => 1,
    ioeventfd: () => ({ remove() {} }),
    close: () => void calls.push("vm close"),
  };
  const kvm = {
    createArm64Vm: () => (calls.push("create vm"), vm),
    checkExtension: () => 8,
    close: () => {},
  } as unknown as Arm64Kvm;
  return { kvm, calls };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("createArm64Machine", () => {
  const config = (over: Partial<MachineConfig> = {}): MachineConfig => ({
    name: "a",
    arch: "arm64",
    memory: 64 * 2 ** 20,
    cpus: 1,
    kernel: { path: kernel, kind: "arm64-image", bytes: arm64Image() },
    params: "",
    console: "virtio",
    debug: false,
    logger: new MemoryLogger(),
    ...over,
  });

  it("refuses in one line on a host of another architecture, after writing --dump-dtb's devicetree", async () => {
    const dtb = path.join(tmp, "refused.dtb");
    await expect(createArm64Machine(config({ dumpDtb: dtb }), { arch: "x86_64" })).rejects.toThrow(
      /^an arm64 guest runs on an arm64 host with KVM; this host is x86_64 \(--dump-dtb FILE/,
    );
    expect(readFileSync(dtb).readUInt32BE(0)).toBe(0xd00dfeed);
  });

  it("on an arm64 host builds the run-time machine over KVM and writes --dump-dtb's devicetree too", async () => {
    const fake = fakeKvm([]);
    const dtb = path.join(tmp, "arm64-host.dtb");
    const vm = (await createArm64Machine(config({ cpus: 2, dumpDtb: dtb }), { arch: "arm64", kvm: fake.kvm })) as VirtualMachine & { description: { dtb: Uint8Array } };
    expect(fake.calls).toEqual(["create vm", "memslot 0 at 0x80000000", "vcpu 0 init powerOff=false", "vcpu 1 init powerOff=true", "vgic v3 init"]);
    expect(new Uint8Array(readFileSync(dtb))).toEqual(vm.description.dtb);
    await vm.close?.();
    expect(fake.calls.at(-1)).toBe("vm close");
  });
});

describe("vmm run --arch arm64 through the machineFactory hook, on an arm64 host's factory over a fake KVM", () => {
  it("assembles --rng on the machine's PCI bus, the guest reads its vendor ID through ECAM and writes the UART, and SYSTEM_OFF exits 0", async () => {
    const written: string[] = [];
    vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => (written.push(Buffer.from(chunk).toString()), true));
    let machine: (VirtualMachine & { pciFunctions(): Array<{ address: { bus: number; device: number }; device: { name: string } }> }) | undefined;
    let vendor = 0;
    const ECAM = 0x4000_0000;
    const UART = 0x100_0000;
    const fake = fakeKvm([
      (d) => {
        const rng = machine!.pciFunctions().find((f) => f.device.name === "virtio-rng0")!.address;
        vendor = Number(d.mmio(ECAM + (rng.bus << 20) + (rng.device << 15), 2, false, 0, 0));
        for (const c of "ok\n") d.mmio(UART, 1, true, c.charCodeAt(0), 0);
      },
      () => ({ reason: "system-event", vcpuId: 0, type: 1, flags: 0n }),
    ]);
    const err: string[] = [];
    const ctx: CliContext = {
      cwd: tmp,
      stdout: () => {},
      stderr: (t) => err.push(t),
      machineFactory: async (arch) => {
        expect(arch).toBe("arm64");
        return async (c) => (machine = (await createArm64Machine(c, { arch: "arm64", kvm: fake.kvm })) as typeof machine)!;
      },
    };
    const status = await main(["run", "--arch", "arm64", "-k", kernel, "-m", "64", "--rng", "--console", "virtio", "--name", "arm"], ctx);
    vi.restoreAllMocks();
    expect(err.join("")).toBe("");
    expect(status).toBe(0);
    expect(vendor).toBe(0x1af4);
    expect(written.join("")).toBe("ok\n");
    expect(fake.calls).toContain("vcpu 0 pc=0x80000000");
    expect(fake.calls.at(-1)).toBe("vm close");
  });
});
