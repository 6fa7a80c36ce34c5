import { afterEach, describe, expect, it } from "vitest";
import { hostKvmArch, Kvm, KvmArchitectureError, kvmAvailability } from "../src/index.js";
import { native, tryLoadNative } from "../src/native.js";
import { ARCH_ONLY, SHARED } from "./support/arch-names.js";
import { kvmOk } from "./support/kvm.js";

const addonLoads = !(tryLoadNative() instanceof Error);

describe.skipIf(!addonLoads)("the addon holds the shared part and its own architecture's half only", () => {
  const host = addonLoads ? native().arch : "x86_64";
  const other = host === "x86_64" ? "arm64" : "x86_64";
  const exportsOf = () => Object.keys(native());
  const vcpuMethodsOf = () => Object.getOwnPropertyNames(native().VcpuHandle.prototype);

  it("is built for the architecture this node runs on", () => {
    expect(host).toBe(hostKvmArch());
  });

  it(`exports the shared calls and the ${host} ones, none of the other architecture's`, () => {
    expect(exportsOf()).toEqual(expect.arrayContaining([...SHARED.functions, ...ARCH_ONLY[host].functions]));
    for (const name of ARCH_ONLY[other].functions) expect(exportsOf()).not.toContain(name);
  });

  it(`gives vCPU handles the shared methods and the ${host} ones, none of the other architecture's`, () => {
    expect(vcpuMethodsOf()).toEqual(expect.arrayContaining([...SHARED.vcpuMethods, ...ARCH_ONLY[host].vcpuMethods]));
    for (const name of ARCH_ONLY[other].vcpuMethods) expect(vcpuMethodsOf()).not.toContain(name);
  });
});

describe.skipIf(!kvmOk)("the entry points that pick an architecture (real /dev/kvm)", () => {
  let kvm: Kvm | undefined;
  afterEach(() => kvm?.close());

  it("names the architecture when asked for the other one's VM or CPUID", () => {
    expect(kvmAvailability().ok).toBe(true);
    kvm = Kvm.open();
    expect(kvm.arch).toBe(hostKvmArch());
    const otherEntries: Array<[string, () => unknown]> =
      kvm.arch === "x86_64"
        ? [["createArm64Vm", () => kvm!.createArm64Vm()]]
        : [
            ["createVm", () => kvm!.createVm()],
            ["supportedCpuid", () => kvm!.supportedCpuid()],
          ];
    for (const [name, call] of otherEntries) {
      let error: unknown;
      try {
        call();
      } catch (e) {
        error = e;
      }
      expect(error, name).toBeInstanceOf(KvmArchitectureError);
      const e = error as KvmArchitectureError;
      expect(e.host).toBe(kvm.arch);
      expect(e.required).not.toBe(kvm.arch);
      expect(e.message).toContain(name);
      expect(e.message).toContain(`built for ${kvm.arch}`);
    }
  });
});
