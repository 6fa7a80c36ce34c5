// Plain-object shapes of KVM state. 64-bit fields are JavaScript numbers, exact up to 2^53;
// setters also accept bigints for full 64-bit values. MSR values are bigints (PAT and friends use all 64 bits).

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
  rax: number; rbx: number; rcx: number; rdx: number;
  rsi: number; rdi: number; rsp: number; rbp: number;
  r8: number; r9: number; r10: number; r11: number;
  r12: number; r13: number; r14: number; r15: number;
  rip: number; rflags: number;
}

export interface Segment {
  base: number;
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

export interface DescriptorTable {
  base: number;
  limit: number;
}

export interface Sregs {
  cs: Segment; ds: Segment; es: Segment; fs: Segment; gs: Segment; ss: Segment; tr: Segment; ldt: Segment;
  gdt: DescriptorTable;
  idt: DescriptorTable;
  cr0: number; cr2: number; cr3: number; cr4: number; cr8: number;
  efer: number;
  apicBase: number;
  /** Pending external interrupts (256 bits, 4 words). */
  interruptBitmap: bigint[];
}

export interface Fpu {
  /** 8 x87 registers of 16 bytes. */
  fpr: Uint8Array;
  fcw: number;
  fsw: number;
  ftwx: number;
  lastOpcode: number;
  lastIp: number;
  lastDp: number;
  /** 16 XMM registers of 16 bytes. */
  xmm: Uint8Array;
  mxcsr: number;
}

export interface MsrEntry {
  index: number;
  value: bigint;
}

/** Port-I/O and MMIO exit handlers, called synchronously on the JS thread inside Vcpu.run. */
export interface ExitDispatch {
  /** Returns the value read (ignored for writes). `rep ins/outs` calls once per element. */
  pio(port: number, size: 1 | 2 | 4, isWrite: boolean, value: number): number;
  /** The written value is split in 32-bit halves `lo`/`hi`; returns the value read (number or bigint). */
  mmio(address: number, size: 1 | 2 | 4 | 8, isWrite: boolean, lo: number, hi: number): number | bigint;
}

export type RunResult =
  /** The event loop has work, the slice is over, or requestStop()/kick() was called. */
  | { reason: "yield" }
  /** HLT without an in-kernel irqchip. */
  | { reason: "hlt" }
  /** Triple fault. */
  | { reason: "shutdown"; vcpuId: number; rip: number }
  /** `bytes`: the instruction the emulator could not run (suberror 1), when KVM reports it; `data`: raw internal.data. */
  | { reason: "internal-error"; vcpuId: number; suberror: number; rip: number; bytes: Uint8Array; data: bigint[] }
  | { reason: "fail-entry"; vcpuId: number; code: number; rip: number }
  | { reason: "system-event"; vcpuId: number; type: number }
  | { reason: "unknown"; vcpuId: number; exitReason: number; rip: number };

export interface RunOptions {
  /** Return "yield" after at most this many ms even if the event loop is idle. Default: libuv's timeout only. */
  maxSliceMs?: number;
  /** While setImmediate callbacks are queued (libuv idle handles active, as they are for the immediate that
   * re-entered run()), the slice ends after at most this many ms (default 4) so that they run. It is a cap, not
   * a floor: new fd readiness and due timers still end the slice at once. */
  immediateSliceMs?: number;
}
