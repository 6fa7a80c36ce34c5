// One x86_64 vCPU's state in a snapshot: everything KVM keeps for it, saved and restored in the order KVM needs
// (special registers before the LAPIC, whose base they set; pending events after the LAPIC; MSRs last but the
// debug registers, so a restored TSC deadline sees the restored TSC).
import { SnapshotError, decodeBytes, encodeBytes, stateData, stateInt, type DeviceState, type StateValue } from "@vmm/core";
import { fromStateValue, toStateValue } from "./bigint-json.js";
import type { StateObject } from "./fields.js";

/** What this module needs of a vCPU (`@vmm/kvm-native`'s Vcpu). */
export interface X86VcpuStateAccess {
  getRegs(): object;
  setRegs(regs: never): void;
  getSregs(): object;
  setSregs(sregs: never): void;
  getXsave(): Uint8Array;
  setXsave(bytes: Uint8Array): void;
  getXcrs(): Array<{ xcr: number; value: bigint }>;
  setXcrs(xcrs: Array<{ xcr: number; value: bigint }>): void;
  readMsrs(indices: number[]): Array<{ index: number; value: bigint }>;
  setMsrs(entries: Array<{ index: number; value: bigint }>): void;
  getLapic(): Uint8Array;
  setLapic(state: Uint8Array): void;
  getVcpuEvents(): Uint8Array;
  setVcpuEvents(bytes: Uint8Array): void;
  getDebugRegs(): Uint8Array;
  setDebugRegs(bytes: Uint8Array): void;
  getMpState(): number;
  setMpState(state: number): void;
}

const VERSION = 1;
const LAPIC_BYTES = 1024;

/** The vCPU's state; `msrIndices` is KVM's list of MSRs to save (Kvm.msrIndexList()). */
export function saveX86Vcpu(vcpu: X86VcpuStateAccess, msrIndices: readonly number[], what: string): DeviceState {
  return {
    version: VERSION,
    data: {
      regs: toStateValue(vcpu.getRegs(), `${what}: regs`),
      sregs: toStateValue(vcpu.getSregs(), `${what}: sregs`),
      xsave: encodeBytes(vcpu.getXsave()),
      xcrs: toStateValue(vcpu.getXcrs(), `${what}: xcrs`),
      lapic: encodeBytes(vcpu.getLapic()),
      events: encodeBytes(vcpu.getVcpuEvents()),
      msrs: toStateValue(vcpu.readMsrs([...msrIndices]), `${what}: msrs`),
      debugRegs: encodeBytes(vcpu.getDebugRegs()),
      mpState: vcpu.getMpState(),
    },
  };
}

/** Puts a saved state into a vCPU created the same way (same CPUID). KVM refusing a value is a SnapshotError. */
export function restoreX86Vcpu(vcpu: X86VcpuStateAccess, state: DeviceState, what: string): void {
  const d = stateData(state, what, VERSION);
  const step = (name: string, apply: () => void) => {
    try {
      apply();
    } catch (error) {
      if (error instanceof SnapshotError) throw error;
      throw new SnapshotError(`${what}: KVM refused the saved ${name}: ${(error as Error).message}`, { cause: error });
    }
  };
  const object = (key: string) => {
    const v = d[key];
    if (!v || typeof v !== "object" || Array.isArray(v)) throw new SnapshotError(`${what}: ${key} must be an object`);
    return fromStateValue(v, `${what}: ${key}`) as never;
  };
  const entries = <T>(key: string, fields: readonly string[]): T[] => {
    const v = d[key];
    if (!Array.isArray(v)) throw new SnapshotError(`${what}: ${key} must be a list`);
    return (v as StateValue[]).map((e, i) => {
      const entry = fromStateValue(e, `${what}: ${key}[${i}]`) as Record<string, unknown>;
      for (const f of fields) if (typeof entry?.[f] !== "number" && typeof entry?.[f] !== "bigint") throw new SnapshotError(`${what}: ${key}[${i}].${f} must be a number`);
      return { ...entry, value: BigInt(entry.value as bigint) } as T;
    });
  };
  const regs = object("regs");
  const sregs = object("sregs");
  const xsave = decodeBytes(d.xsave, `${what}: xsave`);
  const xcrs = entries<{ xcr: number; value: bigint }>("xcrs", ["xcr", "value"]);
  const lapic = decodeBytes(d.lapic, `${what}: lapic`, LAPIC_BYTES);
  const events = decodeBytes(d.events, `${what}: events`);
  const msrs = entries<{ index: number; value: bigint }>("msrs", ["index", "value"]);
  const debugRegs = decodeBytes(d.debugRegs, `${what}: debugRegs`);
  const mpState = stateInt(d as StateObject, "mpState", what, 0, 16);
  step("general registers", () => vcpu.setRegs(regs));
  step("XSAVE area", () => vcpu.setXsave(xsave));
  step("XCRs", () => vcpu.setXcrs(xcrs));
  step("special registers", () => vcpu.setSregs(sregs));
  step("MP state", () => vcpu.setMpState(mpState));
  step("LAPIC", () => vcpu.setLapic(lapic));
  step("pending events", () => vcpu.setVcpuEvents(events));
  step("MSRs", () => vcpu.setMsrs(msrs));
  step("debug registers", () => vcpu.setDebugRegs(debugRegs));
}
