// What an arm64 vCPU's run loop takes and returns.

/** MMIO exits of an arm64 vCPU, called synchronously on the JS thread inside Arm64Vcpu.run (arm64 has no port I/O). */
export interface Arm64ExitDispatch {
  /** As VcpuExitDispatch.mmio: the written value in 32-bit halves `lo`/`hi`; returns the value read. */
  mmio(address: number, size: 1 | 2 | 4 | 8, isWrite: boolean, lo: number, hi: number): number | bigint;
}

/** `pc` is exact (a bigint); undefined only when it could not be read. */
export type Arm64VcpuRunResult =
  /** The event loop has work, the slice is over, or requestStop()/kick() was called. */
  | { reason: "yield" }
  /**
   * The guest asked for the system through PSCI: `type` SystemEvent.SHUTDOWN (SYSTEM_OFF) or RESET (SYSTEM_RESET;
   * SYSTEM_RESET2 sets bit 0 of `flags`), others on newer kernels (SUSPEND with KVM_CAP_ARM_SYSTEM_SUSPEND).
   */
  | { reason: "system-event"; vcpuId: number; type: number; flags: bigint }
  | { reason: "internal-error"; vcpuId: number; suberror: number; pc: bigint | undefined; bytes: Uint8Array; data: bigint[] }
  | { reason: "fail-entry"; vcpuId: number; code: bigint; pc: bigint | undefined }
  | { reason: "unknown"; vcpuId: number; exitReason: number; pc: bigint | undefined };
