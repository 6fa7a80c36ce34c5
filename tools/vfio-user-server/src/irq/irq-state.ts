import {
  Errno,
  PciIrq,
  VFIO_IRQ_INFO_AUTOMASKED,
  VFIO_IRQ_INFO_EVENTFD,
  VFIO_IRQ_INFO_MASKABLE,
  VFIO_IRQ_INFO_NORESIZE,
  VFIO_IRQ_SET_ACTION_MASK,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_ACTION_TYPE_MASK,
  VFIO_IRQ_SET_ACTION_UNMASK,
  VFIO_IRQ_SET_DATA_BOOL,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_IRQ_SET_DATA_TYPE_MASK,
} from "../protocol/constants.js";
import { invalid, ProtocolError } from "../protocol/errors.js";

/** Interrupts of each index the device has: INTx (0 or 1), MSI vectors, MSI-X vectors. */
export interface IrqCounts {
  readonly intx: number;
  readonly msi: number;
  readonly msix: number;
}

/** A DEVICE_SET_IRQS request (struct vfio_irq_set) with the fds that came with it. */
export interface IrqSetRequest {
  readonly flags: number;
  readonly index: number;
  readonly start: number;
  readonly count: number;
  /** DATA_BOOL: one byte per interrupt of the range. */
  readonly bools: Uint8Array;
  readonly fds: readonly number[];
}

/** The host side of an eventfd: signalling it (writing 1), checking that an fd is one, closing it. */
export interface EventFdOps {
  signal(fd: number): void;
  isEventFd(fd: number): boolean;
  close(fd: number): void;
}

interface IntxState {
  /** VFIO's mask: set by each trigger (automask) and by ACTION_MASK, cleared by ACTION_UNMASK. */
  masked: boolean;
  /** The device's line: asserted until the device deasserts it. */
  level: boolean;
}

/**
 * The client's interrupt configuration, as kernel VFIO keeps it for vfio-pci: a trigger eventfd per interrupt of
 * each index, and INTx's automask. The device raises interrupts through `signal` and drives INTx's level through
 * `setIntxLevel`; INTx is level-triggered: a trigger is signalled while the line is asserted and INTx unmasked, and
 * then masks it until the client unmasks (an unmask with the line still asserted signals again).
 */
export class IrqState {
  private readonly triggers: (number | undefined)[][];
  private readonly intx: IntxState = { masked: false, level: false };
  private readonly triggerListeners: Array<(index: number, vector: number, assigned: boolean) => void> = [];

  constructor(
    readonly counts: IrqCounts,
    private readonly ops: EventFdOps,
  ) {
    this.triggers = [counts.intx, counts.msi, counts.msix].map((n) => new Array<number | undefined>(n).fill(undefined));
  }

  /** struct vfio_irq_info's flags and count for `index` (EINVAL for an index this device does not offer). */
  info(index: number): { flags: number; count: number } {
    switch (index) {
      case PciIrq.INTX:
        return { flags: VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED, count: this.counts.intx };
      case PciIrq.MSI:
        return { flags: VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE, count: this.counts.msi };
      case PciIrq.MSIX:
        return { flags: VFIO_IRQ_INFO_EVENTFD, count: this.counts.msix };
      default:
        throw invalid(`IRQ index ${index} does not exist (this device has ${PciIrq.COUNT})`);
    }
  }

  /** Whether any interrupt of `index` has a trigger eventfd (how the device picks MSI-X, MSI or INTx). */
  hasTriggers(index: number): boolean {
    return this.triggers[index]?.some((fd) => fd !== undefined) ?? false;
  }

  /** Whether interrupt `vector` of `index` has a trigger eventfd now. */
  hasTrigger(index: number, vector: number): boolean {
    return this.triggers[index]?.[vector] !== undefined;
  }

  /**
   * Hears every trigger eventfd the client assigns (each assignment, also one replacing an fd) or takes away, per
   * interrupt, after the change: what a host kernel acts on (it programs a vector's MSI-X entry as it requests it).
   */
  onTriggerChange(listener: (index: number, vector: number, assigned: boolean) => void): void {
    this.triggerListeners.push(listener);
  }

  /** Signals interrupt `vector` of `index` if the client gave it an eventfd; false when there is none. */
  signal(index: number, vector: number): boolean {
    const fd = this.triggers[index]?.[vector];
    if (fd === undefined) return false;
    this.ops.signal(fd);
    return true;
  }

  get intxMasked(): boolean {
    return this.intx.masked;
  }

  get intxLevel(): boolean {
    return this.intx.level;
  }

  /** The device asserts (true) or deasserts (false) its INTx line. */
  setIntxLevel(level: boolean): void {
    this.intx.level = level;
    if (level) this.fireIntx();
  }

  /** Applies a DEVICE_SET_IRQS request. Validates everything first: on error nothing changed and no fd is kept. */
  set(request: IrqSetRequest): void {
    const data = request.flags & VFIO_IRQ_SET_DATA_TYPE_MASK;
    const action = request.flags & VFIO_IRQ_SET_ACTION_TYPE_MASK;
    if (request.flags & ~(VFIO_IRQ_SET_DATA_TYPE_MASK | VFIO_IRQ_SET_ACTION_TYPE_MASK)) throw invalid(`SET_IRQS: unknown flags 0x${request.flags.toString(16)}`);
    if (!isSingleBit(data) || !isSingleBit(action)) throw invalid(`SET_IRQS: flags 0x${request.flags.toString(16)} must name one data type and one action`);
    const total = this.info(request.index).count;
    if (data !== VFIO_IRQ_SET_DATA_EVENTFD && request.fds.length > 0) throw invalid("SET_IRQS: fds sent without DATA_EVENTFD");

    if (request.count === 0) {
      // count 0 with DATA_NONE and TRIGGER disables every interrupt of the index.
      if (data !== VFIO_IRQ_SET_DATA_NONE || action !== VFIO_IRQ_SET_ACTION_TRIGGER) throw invalid("SET_IRQS: count 0 is only allowed with DATA_NONE | ACTION_TRIGGER");
      this.disable(request.index);
      return;
    }
    if (request.start + request.count > total) {
      throw invalid(`SET_IRQS: interrupts ${request.start}..${request.start + request.count - 1} of index ${request.index}, which has ${total}`);
    }
    if (data === VFIO_IRQ_SET_DATA_BOOL && request.bools.length < request.count) throw invalid(`SET_IRQS: ${request.count} booleans expected, ${request.bools.length} sent`);
    const selected = (i: number): boolean => data === VFIO_IRQ_SET_DATA_NONE || (data === VFIO_IRQ_SET_DATA_BOOL && request.bools[i] !== 0);

    if (action === VFIO_IRQ_SET_ACTION_TRIGGER) {
      if (data === VFIO_IRQ_SET_DATA_EVENTFD) return this.assignTriggers(request);
      // The client triggers the interrupts itself: their eventfds are signalled as they are.
      for (let i = 0; i < request.count; i++) if (selected(i)) this.signal(request.index, request.start + i);
      return;
    }
    if (request.index !== PciIrq.INTX) throw invalid(`SET_IRQS: index ${request.index} cannot be masked (only INTx is maskable)`);
    const masking = action === VFIO_IRQ_SET_ACTION_MASK;
    if (data === VFIO_IRQ_SET_DATA_EVENTFD) return this.assignMaskNotifier(masking, request.fds);
    if (!selected(0)) return;
    if (masking) this.maskIntx();
    else this.unmaskIntx();
  }

  /** Closes every fd the client gave (it disconnected). */
  closeAll(): void {
    for (let index = 0; index < this.triggers.length; index++) this.disable(index);
  }

  private assignTriggers(request: IrqSetRequest): void {
    const { index, start, count, fds } = request;
    if (fds.length !== 0 && fds.length !== count) {
      throw invalid(`SET_IRQS: ${fds.length} eventfds for ${count} interrupts (send one per interrupt, or none to deassign)`);
    }
    for (const fd of fds) if (!this.ops.isEventFd(fd)) throw invalid(`SET_IRQS: fd ${fd} is not an eventfd`);
    const slots = this.triggers[index]!;
    const changed: number[] = [];
    for (let i = 0; i < count; i++) {
      const old = slots[start + i];
      if (old !== undefined) this.ops.close(old);
      if (old !== undefined || fds[i] !== undefined) changed.push(start + i);
      slots[start + i] = fds[i];
    }
    for (const vector of changed) this.triggerChanged(index, vector, slots[vector] !== undefined);
    // A line asserted before INTx had an eventfd is signalled now that it has one (it is level-triggered).
    if (index === PciIrq.INTX && fds.length > 0) this.fireIntx();
  }

  private triggerChanged(index: number, vector: number, assigned: boolean): void {
    for (const listener of this.triggerListeners) listener(index, vector, assigned);
  }

  /**
   * ACTION_MASK / ACTION_UNMASK with DATA_EVENTFD ask the device side to watch an eventfd the client (or KVM's irqfd
   * resampler) signals to mask / unmask INTx. This server serves one request at a time and watches nothing else, so
   * it refuses them (ENOTSUP): a client falls back to ACTION_UNMASK with DATA_NONE, which the specification also
   * offers.
   */
  private assignMaskNotifier(masking: boolean, fds: readonly number[]): never {
    if (fds.length !== 1) throw new ProtocolError(Errno.EINVAL, `SET_IRQS: ${fds.length} eventfds for INTx's one ${masking ? "mask" : "unmask"} eventfd`);
    throw new ProtocolError(Errno.ENOTSUP, `SET_IRQS: ${masking ? "mask" : "unmask"} eventfds are not supported by this server (send ${masking ? "ACTION_MASK" : "ACTION_UNMASK"} with DATA_NONE)`);
  }

  private disable(index: number): void {
    const slots = this.triggers[index]!;
    for (let i = 0; i < slots.length; i++) {
      const fd = slots[i];
      slots[i] = undefined;
      if (fd === undefined) continue;
      this.ops.close(fd);
      this.triggerChanged(index, i, false);
    }
    if (index === PciIrq.INTX) this.intx.masked = false;
  }

  private maskIntx(): void {
    this.intx.masked = true;
  }

  private unmaskIntx(): void {
    this.intx.masked = false;
    this.fireIntx();
  }

  /** Signals INTx if the line is asserted, unmasked and has an eventfd; then automasks, as kernel VFIO does. */
  private fireIntx(): void {
    if (!this.intx.level || this.intx.masked) return;
    if (this.signal(PciIrq.INTX, 0)) this.maskIntx();
  }
}

function isSingleBit(value: number): boolean {
  return value !== 0 && (value & (value - 1)) === 0;
}
