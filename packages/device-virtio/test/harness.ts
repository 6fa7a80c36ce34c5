// A modern virtio driver simulated over a BAR handler, plus interrupt recorders.
import { type GuestMemory, type IoHandler, MemoryLogger } from "@vmm/core";
import { bit, FeatureBit, NO_VECTOR, Status } from "../src/constants.js";
import type { VirtioDevice } from "../src/device.js";
import { modernBarHandler, ModernLayout } from "../src/transport/modern.js";
import { type InterruptSink, VirtioTransport } from "../src/transport/state.js";
import { Allocator, DriverRing, makeMemory, RAM_BASE } from "./driver.js";

export class RecordingSink implements InterruptSink {
  msixOn = false;
  vectors = 4;
  sent: number[] = [];
  level = false;
  raises = 0;
  private readonly line = {
    level: false,
    set: (l: boolean) => {
      if (l && !this.level) this.raises++;
      this.level = l;
    },
  };
  msixEnabled(): boolean {
    return this.msixOn;
  }
  msixVectors(): number {
    return this.vectors;
  }
  msix(vector: number): void {
    this.sent.push(vector);
  }
  intx() {
    return this.line;
  }
}

export const C = {
  DF_SELECT: 0x00,
  DF: 0x04,
  GF_SELECT: 0x08,
  GF: 0x0c,
  MSIX_CONFIG: 0x10,
  NUM_QUEUES: 0x12,
  STATUS: 0x14,
  GENERATION: 0x15,
  Q_SELECT: 0x16,
  Q_SIZE: 0x18,
  Q_VECTOR: 0x1a,
  Q_ENABLE: 0x1c,
  Q_NOTIFY_OFF: 0x1e,
  Q_DESC: 0x20,
  Q_DRIVER: 0x28,
  Q_DEVICE: 0x30,
} as const;

/** Drives a transport through its modern BAR exactly as a guest driver would. */
export class ModernDriver {
  readonly rings: DriverRing[] = [];
  constructor(
    readonly bar: IoHandler,
    readonly mem: GuestMemory,
    readonly alloc: Allocator,
  ) {}

  r(off: number, size: 1 | 2 | 4): number {
    return this.bar.read(off, size);
  }
  w(off: number, size: 1 | 2 | 4, v: number): void {
    this.bar.write(off, size, v);
  }
  deviceFeatures(): bigint {
    this.w(C.DF_SELECT, 4, 0);
    const lo = this.r(C.DF, 4);
    this.w(C.DF_SELECT, 4, 1);
    return (BigInt(this.r(C.DF, 4)) << 32n) | BigInt(lo);
  }
  writeFeatures(f: bigint): void {
    this.w(C.GF_SELECT, 4, 0);
    this.w(C.GF, 4, Number(f & 0xffff_ffffn));
    this.w(C.GF_SELECT, 4, 1);
    this.w(C.GF, 4, Number(f >> 32n));
  }
  status(): number {
    return this.r(C.STATUS, 1);
  }
  /** The full initialisation sequence (virtio 1.x, 3.1.1). Returns false when FEATURES_OK did not stick. */
  init(options: { features?: (offered: bigint) => bigint; queueSizes?: number[]; vectors?: number[]; configVector?: number } = {}): boolean {
    this.w(C.STATUS, 1, 0);
    this.w(C.STATUS, 1, Status.ACKNOWLEDGE);
    this.w(C.STATUS, 1, Status.ACKNOWLEDGE | Status.DRIVER);
    const offered = this.deviceFeatures();
    this.writeFeatures(options.features ? options.features(offered) : offered);
    this.w(C.STATUS, 1, Status.ACKNOWLEDGE | Status.DRIVER | Status.FEATURES_OK);
    if (!(this.status() & Status.FEATURES_OK)) return false;
    if (options.configVector !== undefined) this.w(C.MSIX_CONFIG, 2, options.configVector);
    const n = this.r(C.NUM_QUEUES, 2);
    for (let q = 0; q < n; q++) {
      this.w(C.Q_SELECT, 2, q);
      const size = options.queueSizes?.[q] ?? this.r(C.Q_SIZE, 2);
      this.w(C.Q_SIZE, 2, size);
      const ring = new DriverRing(this.mem, size, this.alloc);
      this.rings.push(ring);
      this.w(C.Q_DESC, 4, ring.desc);
      this.w(C.Q_DESC + 4, 4, 0);
      this.w(C.Q_DRIVER, 4, ring.avail);
      this.w(C.Q_DRIVER + 4, 4, 0);
      this.w(C.Q_DEVICE, 4, ring.used);
      this.w(C.Q_DEVICE + 4, 4, 0);
      this.w(C.Q_VECTOR, 2, options.vectors?.[q] ?? NO_VECTOR);
      this.w(C.Q_ENABLE, 2, 1);
    }
    this.w(C.STATUS, 1, Status.ACKNOWLEDGE | Status.DRIVER | Status.FEATURES_OK | Status.DRIVER_OK);
    return true;
  }
  kick(queue: number): void {
    this.w(ModernLayout.NOTIFY + queue * ModernLayout.NOTIFY_MULTIPLIER, 2, queue);
  }
  isr(): number {
    return this.r(ModernLayout.ISR, 1);
  }
  config(offset: number, size: 1 | 2 | 4): number {
    return this.r(ModernLayout.DEVICE + offset, size);
  }
}

export function setupTransport(device: VirtioDevice, memSize = 4 << 20, mem: GuestMemory = makeMemory(memSize)) {
  const alloc = new Allocator(RAM_BASE);
  const sink = new RecordingSink();
  const logger = new MemoryLogger();
  const transport = new VirtioTransport(device, mem, sink, logger, "test-dev");
  const driver = new ModernDriver(modernBarHandler(transport), mem, alloc);
  return { mem, alloc, sink, logger, transport, driver };
}

export const ALL_BUT = (offered: bigint, ...bits: number[]) => bits.reduce((f, b) => f & ~bit(b), offered);
export { FeatureBit };

/** Waits until `cond` holds, polling the event loop (for asynchronous device I/O). */
export async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out waiting for the device");
    await new Promise((r) => setTimeout(r, 1));
  }
}
