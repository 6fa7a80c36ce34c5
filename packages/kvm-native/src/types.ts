// Plain-object shapes of KVM state. Getters return 64-bit registers and addresses as bigints, exact to the last
// bit (RIP 0xffffffff8305e26c, a gs base, CR2); fields that are narrow by definition (rflags, selectors, limits,
// attributes) are numbers. Setters accept numbers (non-negative safe integers) or bigints for any field.

export interface CpuidEntry {
  function: number;
  index: number;
  flags: number;
  eax: number;
  ebx: number;
  ecx: number;
  edx: number;
}

export interface Regs {
  rax: bigint; rbx: bigint; rcx: bigint; rdx: bigint;
  rsi: bigint; rdi: bigint; rsp: bigint; rbp: bigint;
  r8: bigint; r9: bigint; r10: bigint; r11: bigint;
  r12: bigint; r13: bigint; r14: bigint; r15: bigint;
  rip: bigint;
  /** A number: bits 22-63 are reserved (zero). */
  rflags: number;
}

/** What setRegs takes: any subset, numbers or bigints. */
export type RegsInput = Partial<Record<keyof Regs, number | bigint>>;

/** A segment as setSregs takes it; getSregs returns SegmentState (base as a bigint). */
export interface Segment {
  base: number | bigint;
  limit: number;
  selector: number;
  type: number;
  present: number;
  dpl: number;
  db: number;
  s: number;
  l: number;
  g: number;
  avl: number;
  unusable?: number;
}

export interface SegmentState extends Segment {
  base: bigint;
}

export interface DescriptorTable {
  base: number | bigint;
  limit: number;
}

export interface DescriptorTableState extends DescriptorTable {
  base: bigint;
}

export interface Sregs {
  cs: SegmentState; ds: SegmentState; es: SegmentState; fs: SegmentState;
  gs: SegmentState; ss: SegmentState; tr: SegmentState; ldt: SegmentState;
  gdt: DescriptorTableState;
  idt: DescriptorTableState;
  cr0: bigint; cr2: bigint; cr3: bigint; cr4: bigint; cr8: bigint;
  efer: bigint;
  apicBase: bigint;
  /** Pending external interrupts (256 bits, 4 words). */
  interruptBitmap: bigint[];
}

type SegmentName = "cs" | "ds" | "es" | "fs" | "gs" | "ss" | "tr" | "ldt";
type ControlName = "cr0" | "cr2" | "cr3" | "cr4" | "cr8" | "efer" | "apicBase";

/** What setSregs takes: any subset; whole segments and tables; numbers or bigints. */
export type SregsInput = { [K in SegmentName]?: Segment } & { gdt?: DescriptorTable; idt?: DescriptorTable } & {
  [K in ControlName]?: number | bigint;
} & { interruptBitmap?: Array<number | bigint> };

export interface Fpu {
  /** 8 x87 registers of 16 bytes. */
  fpr: Uint8Array;
  fcw: number;
  fsw: number;
  ftwx: number;
  lastOpcode: number;
  lastIp: bigint;
  lastDp: bigint;
  /** 16 XMM registers of 16 bytes. */
  xmm: Uint8Array;
  mxcsr: number;
}

/** What setFpu takes: any subset; lastIp/lastDp as numbers or bigints. */
export type FpuInput = Partial<Omit<Fpu, "lastIp" | "lastDp">> & { lastIp?: number | bigint; lastDp?: number | bigint };

export interface MsrEntry {
  index: number;
  value: bigint;
}

/** Port-I/O and MMIO exit handlers, called synchronously on the JS thread inside Vcpu.run. */
export interface VcpuExitDispatch {
  /** Returns the value read (ignored for writes). `rep ins/outs` calls once per element. */
  pio(port: number, size: 1 | 2 | 4, isWrite: boolean, value: number): number;
  /**
   * The written value is split in 32-bit halves `lo`/`hi`; returns the value read (number or bigint). `address`
   * is a number: guest-physical addresses are below 2^52, so it is exact (and no bigint is made per exit).
   */
  mmio(address: number, size: 1 | 2 | 4 | 8, isWrite: boolean, lo: number, hi: number): number | bigint;
}

/** `rip` is exact (a bigint); undefined only when KVM_GET_REGS failed. */
export type VcpuRunResult =
  /** The event loop has work, the slice is over, or requestStop()/kick() was called. */
  | { reason: "yield" }
  /** HLT without an in-kernel irqchip. */
  | { reason: "hlt" }
  /** Triple fault. */
  | { reason: "shutdown"; vcpuId: number; rip: bigint | undefined }
  /** `bytes`: the instruction the emulator could not run (suberror 1), when KVM reports it; `data`: raw internal.data. */
  | { reason: "internal-error"; vcpuId: number; suberror: number; rip: bigint | undefined; bytes: Uint8Array; data: bigint[] }
  | { reason: "fail-entry"; vcpuId: number; code: bigint; rip: bigint | undefined }
  | { reason: "system-event"; vcpuId: number; type: number }
  | { reason: "unknown"; vcpuId: number; exitReason: number; rip: bigint | undefined };

/** How `runOnThread` hands exits to the JS thread. */
export interface ThreadRunOptions {
  /**
   * How long each side spins before it sleeps (µs, default 20; 0: sleep at once): the vCPU thread for the answer to
   * the exit it handed over, the JS thread, after an answer, for the vCPU's next exit (answered at once, without the
   * event loop's wake-up; at most 1 ms per event-loop turn).
   */
  spinUs?: number;
}

export interface RunOptions {
  /** Return "yield" after at most this many ms even if the event loop is idle. Default: libuv's timeout only. */
  maxSliceMs?: number;
  /** While setImmediate callbacks are queued (libuv idle handles active, as they are for the immediate that
   * re-entered run()), the slice ends after at most this many ms (default 4) so that they run. It is a cap, not
   * a floor: new fd readiness and due timers still end the slice at once. */
  immediateSliceMs?: number;
}
