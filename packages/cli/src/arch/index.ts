import { UsageError } from "../errors.js";
import type { MachineFactory } from "./machine.js";

/** Architectures vmm can assemble, each loaded only when used (so listing device types with `vmm devices` never touches KVM). */
export const ARCHITECTURES: Readonly<Record<string, () => Promise<MachineFactory>>> = {
  x86_64: async () => (await import("./x86_64.js")).createX86Machine,
};

const ALIASES: Readonly<Record<string, string>> = { "x86-64": "x86_64", amd64: "x86_64", x64: "x86_64" };

/** The canonical name for `--arch`, or a usage error naming the supported ones. */
export function canonicalArch(arch: string): string {
  const name = ALIASES[arch] ?? arch;
  if (!Object.hasOwn(ARCHITECTURES, name)) {
    throw new UsageError(`architecture '${arch}' is not supported (supported: ${Object.keys(ARCHITECTURES).join(", ")})`);
  }
  return name;
}
