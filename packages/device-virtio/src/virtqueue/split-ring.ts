import type { GuestMemory } from "@vmm/core";
import { GuestMemoryError } from "@vmm/core";
import { NO_VECTOR } from "../constants.js";
import { type ChainLimits, type DescriptorChain, DESCRIPTOR_SIZE, walkChain } from "./descriptor-chain.js";
import { VirtqueueError } from "./errors.js";

/** avail.flags: the driver does not want used-buffer interrupts (without EVENT_IDX). */
const AVAIL_F_NO_INTERRUPT = 1;
/** Default cap on the bytes of one chain: the used ring's 32-bit length field. */
const MAX_CHAIN_BYTES = 0xffff_ffff;

export interface QueueOptions {
  /** VIRTIO_F_RING_EVENT_IDX negotiated. */
  readonly eventIdx: boolean;
  /** VIRTIO_F_RING_INDIRECT_DESC negotiated. */
  readonly indirect: boolean;
  /** Cap on one chain's bytes; the device's own limit. */
  readonly maxChainBytes?: number;
}

/** A queue's snapshot: its layout (ring addresses as [low, high] 32-bit words) and the device's cursors. */
export interface SavedQueue {
  readonly size: number;
  readonly enabled: boolean;
  readonly vector: number;
  readonly desc: readonly [number, number];
  readonly driver: readonly [number, number];
  readonly device: readonly [number, number];
  /** The next avail ring entry the device takes (the last available index it has seen). */
  readonly nextAvail: number;
  /** The used index the device last published. */
  readonly usedIdx: number;
  /** The used index up to which the driver was last considered for an interrupt (EVENT_IDX suppression). */
  readonly signalledUsed: number;
}

/**
 * One split virtqueue (virtio 1.x, 2.7) as the device sees it: the driver-programmed layout (size, three ring
 * addresses, MSI-X vector, enable) and the device's ring cursors. All guest accesses are bounds-checked; a
 * driver that breaks the ring rules gets a VirtqueueError, never a VMM crash.
 */
/** The three ring addresses the driver programs. */
export type RingField = "desc" | "driver" | "device";

export class SplitQueue {
  size: number;
  enabled = false;
  vector = NO_VECTOR;

  private nextAvail = 0;
  private usedIdx = 0;
  private signalledUsed = 0;
  private options: QueueOptions = { eventIdx: false, indirect: false };
  /** How `pop` walks a chain: fixed from `start` on (one object, not one per chain). */
  private limits: ChainLimits = { maxDescriptors: 0, maxBytes: MAX_CHAIN_BYTES, indirect: false };
  private started = false;
  /** Ring addresses as 32-bit [low, high] words: exactly what the driver wrote (a number holds only 53 bits). */
  private readonly words: Record<RingField, [number, number]> = { desc: [0, 0], driver: [0, 0], device: [0, 0] };

  constructor(
    readonly index: number,
    readonly maxSize: number,
    private readonly memory: GuestMemory,
  ) {
    this.size = maxSize;
  }

  /** Descriptor table, available ring (driver area) and used ring (device area) addresses. */
  get desc(): number {
    return this.address("desc");
  }
  set desc(gpa: number) {
    this.setAddress("desc", gpa);
  }
  get driver(): number {
    return this.address("driver");
  }
  set driver(gpa: number) {
    this.setAddress("driver", gpa);
  }
  get device(): number {
    return this.address("device");
  }
  set device(gpa: number) {
    this.setAddress("device", gpa);
  }

  /** One 32-bit half of a ring address (`high`: bits 32-63), unsigned. */
  addressWord(field: RingField, high: boolean): number {
    return this.words[field][high ? 1 : 0]!;
  }

  setAddressWord(field: RingField, high: boolean, value: number): void {
    this.words[field][high ? 1 : 0] = value >>> 0;
  }

  private address(field: RingField): number {
    const [lo, hi] = this.words[field];
    return hi * 2 ** 32 + lo;
  }

  private setAddress(field: RingField, gpa: number): void {
    this.words[field] = [gpa % 2 ** 32 >>> 0, Math.floor(gpa / 2 ** 32) >>> 0];
  }

  /** Back to the reset state: nothing programmed, cursors at 0. */
  reset(): void {
    this.size = this.maxSize;
    this.desc = this.driver = this.device = 0;
    this.enabled = false;
    this.vector = NO_VECTOR;
    this.nextAvail = this.usedIdx = this.signalledUsed = 0;
    this.started = false;
  }

  /** The driver-programmed layout and the device's ring cursors, for a snapshot (see `restore`). */
  saved(): SavedQueue {
    return {
      size: this.size,
      enabled: this.enabled,
      vector: this.vector,
      desc: [...this.words.desc],
      driver: [...this.words.driver],
      device: [...this.words.device],
      nextAvail: this.nextAvail,
      usedIdx: this.usedIdx,
      signalledUsed: this.signalledUsed,
    };
  }

  /**
   * Puts back a saved layout and cursors (checked by the caller); the queue is stopped until `start`, which the
   * transport calls again for an enabled queue of a running device. Nothing in guest memory is touched: the
   * rings (with avail_event and used_event) come back with guest RAM.
   */
  restore(q: SavedQueue): void {
    this.reset();
    this.size = q.size;
    this.enabled = q.enabled;
    this.vector = q.vector;
    this.words.desc = [q.desc[0], q.desc[1]];
    this.words.driver = [q.driver[0], q.driver[1]];
    this.words.device = [q.device[0], q.device[1]];
    this.nextAvail = q.nextAvail;
    this.usedIdx = q.usedIdx;
    this.signalledUsed = q.signalledUsed;
  }

  /**
   * Moves the device's ring cursors without touching the layout or the started state: a data-plane worker served
   * the queue meanwhile and hands back where it stopped.
   */
  setCursors(c: Pick<SavedQueue, "nextAvail" | "usedIdx" | "signalledUsed">): void {
    this.nextAvail = c.nextAvail & 0xffff;
    this.usedIdx = c.usedIdx & 0xffff;
    this.signalledUsed = c.signalledUsed & 0xffff;
  }

  get isStarted(): boolean {
    return this.started;
  }

  /** Checks the driver's layout against guest RAM and starts serving the queue. */
  start(options: QueueOptions): void {
    const size = this.size;
    const fail = (why: string): never => {
      throw new VirtqueueError(this.index, why);
    };
    if (size === 0 || size > this.maxSize || (size & (size - 1)) !== 0) fail(`queue size ${size} is not a power of two up to ${this.maxSize}`);
    if (this.desc % 16 || this.driver % 2 || this.device % 4) fail("ring addresses are misaligned");
    const regions: [string, number, number][] = [
      ["descriptor table", this.desc, DESCRIPTOR_SIZE * size],
      ["available ring", this.driver, 6 + 2 * size],
      ["used ring", this.device, 6 + 8 * size],
    ];
    for (const [name, gpa, len] of regions) {
      if (!this.memory.contains(gpa, len)) fail(`${name} [0x${gpa.toString(16)}, +${len}) is outside guest RAM`);
    }
    this.options = options;
    this.limits = { maxDescriptors: size, maxBytes: options.maxChainBytes ?? MAX_CHAIN_BYTES, indirect: options.indirect };
    this.started = true;
  }

  /** Chains the driver made available and the device has not taken yet. */
  pending(): number {
    const availIdx = this.ring(() => this.memory.readU16(this.driver + 2));
    const n = (availIdx - this.nextAvail) & 0xffff;
    if (n > this.size) throw new VirtqueueError(this.index, `avail index ${availIdx} is ${n} ahead of the device (queue size ${this.size})`);
    return n;
  }

  /** Takes the next available chain, or undefined when none. Throws VirtqueueError for a malformed one. */
  pop(): DescriptorChain | undefined {
    if (!this.started || this.pending() === 0) return undefined;
    const size = this.size;
    const head = this.ring(() => this.memory.readU16(this.driver + 4 + 2 * (this.nextAvail % size)));
    this.nextAvail = (this.nextAvail + 1) & 0xffff;
    if (this.options.eventIdx) this.ring(() => this.memory.writeU16(this.device + 4 + 8 * size, this.nextAvail));
    return walkChain(this.memory, this.index, this.desc, size, head, this.limits);
  }

  /** Gives back the chain just popped (the device could not use it yet). */
  undoPop(): void {
    this.nextAvail = (this.nextAvail - 1) & 0xffff;
    if (this.options.eventIdx) this.ring(() => this.memory.writeU16(this.device + 4 + 8 * this.size, this.nextAvail));
  }

  /** Returns a chain to the driver with `written` bytes written into its device-writable buffers. */
  push(head: number, written: number): void {
    if (!this.started) return;
    const slot = this.device + 4 + 8 * (this.usedIdx % this.size);
    this.usedIdx = (this.usedIdx + 1) & 0xffff;
    this.ring(() => {
      this.memory.writeU32(slot, head);
      this.memory.writeU32(slot + 4, written);
      this.memory.writeU16(this.device + 2, this.usedIdx);
    });
  }

  /**
   * Whether the driver wants an interrupt for what was pushed since the last call: used_event with
   * EVENT_IDX (2.7.10), otherwise the avail ring's NO_INTERRUPT flag.
   */
  shouldInterrupt(): boolean {
    if (!this.started || this.usedIdx === this.signalledUsed) return false;
    const old = this.signalledUsed;
    this.signalledUsed = this.usedIdx;
    if (this.options.eventIdx) {
      const usedEvent = this.ring(() => this.memory.readU16(this.driver + 4 + 2 * this.size));
      return ((this.usedIdx - usedEvent - 1) & 0xffff) < ((this.usedIdx - old) & 0xffff);
    }
    return (this.ring(() => this.memory.readU16(this.driver)) & AVAIL_F_NO_INTERRUPT) === 0;
  }

  /** Ring accesses were validated at start; a failure here still becomes a queue error, not a crash. */
  private ring<T>(access: () => T): T {
    try {
      return access();
    } catch (e) {
      if (e instanceof GuestMemoryError) throw new VirtqueueError(this.index, "ring access outside guest RAM", { cause: e });
      throw e;
    }
  }
}
