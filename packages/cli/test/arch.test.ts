import { MemoryLogger } from "@vmm/core";
import { describe, expect, it } from "vitest";
import { canonicalArch, DEFAULT_ARCH, hostArchitecture } from "../src/arch/index.js";
import type { MachineConfig } from "../src/arch/machine.js";
import { x86MachineOptions } from "../src/arch/x86_64.js";
import { UsageError } from "../src/errors.js";

const config: MachineConfig = {
  name: "vm1",
  arch: "x86_64",
  memory: 512 * 2 ** 20,
  cpus: 2,
  kernel: { path: "/k", kind: "bzimage", bytes: new Uint8Array(4) },
  initrd: { path: "/i", bytes: new Uint8Array(2) },
  params: "console=ttyS0 quiet",
  console: "serial",
  debug: true,
  logger: new MemoryLogger(),
};

describe("--arch", () => {
  it("knows x86_64, arm64 and their aliases, and refuses the rest clearly", () => {
    expect(canonicalArch("x86_64")).toBe("x86_64");
    expect(canonicalArch("amd64")).toBe("x86_64");
    expect(canonicalArch("arm64")).toBe("arm64");
    expect(canonicalArch("aarch64")).toBe("arm64");
    expect(() => canonicalArch("riscv64")).toThrow(UsageError);
    expect(() => canonicalArch("riscv64")).toThrow("architecture 'riscv64' is not supported (supported: x86_64, arm64)");
  });

  it("defaults to the host's architecture", () => {
    expect(hostArchitecture("x64")).toBe("x86_64");
    expect(hostArchitecture("arm64")).toBe("arm64");
    expect(hostArchitecture("ppc64")).toBeUndefined();
    expect(DEFAULT_ARCH).toBe(hostArchitecture() ?? "x86_64");
  });
});

describe("x86_64 machine options", () => {
  it("carry memory, cpus, kernel, initrd, command line, debug and logger; COM1 on stdio", () => {
    const o = x86MachineOptions(config);
    expect(o).toMatchObject({ name: "vm1", memory: 512 * 2 ** 20, cpus: 2, cmdline: "console=ttyS0 quiet", debug: true, logger: config.logger });
    expect(o.kernel).toEqual({ kind: "bzimage", path: "/k", bytes: config.kernel!.bytes });
    expect(o.initrd).toBe(config.initrd);
    expect(o.serial?.input).toBe(process.stdin);
    expect(o.serial?.output).toBe(process.stdout);
  });
  it("leave stdin to the virtio console when it is the console, and omit an empty command line", () => {
    const o = x86MachineOptions({ ...config, console: "virtio", params: "" });
    expect(o.serial?.input).toBeUndefined();
    expect(o.cmdline).toBeUndefined();
  });
});
