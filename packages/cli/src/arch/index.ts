import type { GuestArchitecture } from "@vmm/core";
import { UsageError } from "../errors.js";
import { createArm64Machine } from "./arm64.js";
import type { MachineFactory } from "./machine.js";
import { createX86Machine } from "./x86_64.js";

/**
 * Architectures vmm can assemble. Each factory imports its machine package when it is first called (so listing
 * device types with `vmm devices` never touches KVM); the factories themselves are small and load with the cli,
 * which spares a `vmm run` the module loader's round for a chunk of their own (issue #17).
 */
export const ARCHITECTURES: Readonly<Record<GuestArchitecture, () => Promise<MachineFactory>>> = {
  x86_64: async () => createX86Machine,
  arm64: async () => createArm64Machine,
};

const ALIASES: Readonly<Record<string, GuestArchitecture>> = { "x86-64": "x86_64", amd64: "x86_64", x64: "x86_64", aarch64: "arm64" };

/** The canonical name for `--arch`, or a usage error naming the supported ones. */
export function canonicalArch(arch: string): GuestArchitecture {
  const name = ALIASES[arch] ?? arch;
  if (!Object.hasOwn(ARCHITECTURES, name)) {
    throw new UsageError(`architecture '${arch}' is not supported (supported: ${Object.keys(ARCHITECTURES).join(", ")})`);
  }
  return name as GuestArchitecture;
}

/** The guest architecture this host's KVM runs (Node's process.arch), or undefined on other hosts. */
export function hostArchitecture(nodeArch: string = process.arch): GuestArchitecture | undefined {
  return ({ x64: "x86_64", arm64: "arm64" } as const)[nodeArch as "x64" | "arm64"];
}

/** `--arch`'s default: the host's own, x86_64 where the host is neither. */
export const DEFAULT_ARCH: GuestArchitecture = hostArchitecture() ?? "x86_64";
