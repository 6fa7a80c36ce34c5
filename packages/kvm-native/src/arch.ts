// The binding has one half per host architecture: an addon built on x86_64 has x86's VM and vCPU calls, one built
// on arm64 has arm64's (binding.gyp picks the sources by target_arch). Each half has its own TypeScript classes
// (Vm/Vcpu, Arm64Vm/Arm64Vcpu), so a caller's types only offer what its architecture has; the few entry points
// that choose a half (Kvm.createVm, Kvm.createArm64Vm, Kvm.supportedCpuid) throw KvmArchitectureError on the
// other one.

/** A host architecture the binding is built for. */
export type KvmArch = "x86_64" | "arm64";

const NODE_ARCH: Readonly<Record<string, KvmArch>> = { x64: "x86_64", arm64: "arm64" };

/** The architecture this Node runs on, when the binding supports it (what its addon is built for). */
export function hostKvmArch(): KvmArch | undefined {
  return NODE_ARCH[process.arch];
}

/** A call that belongs to the other architecture's half of the binding. */
export class KvmArchitectureError extends Error {
  override name = "KvmArchitectureError";

  constructor(
    /** The architecture the call needs. */
    readonly required: KvmArch,
    /** The architecture the addon was built for. */
    readonly host: string,
    what: string,
  ) {
    super(`${what} needs an ${required} host (KVM runs guests of the host's architecture); this addon is built for ${host}`);
  }
}
