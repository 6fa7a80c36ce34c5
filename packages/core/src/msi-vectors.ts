import type { MsiController, MsiMessage } from "./interrupts.js";

/**
 * One MSI or MSI-X vector of a function, as the platform delivers it. The capability that owns it keeps the
 * programmed message in sync with what the guest wrote (`program(message)` while the vector is deliverable,
 * `program(undefined)` while it is masked or disabled) and calls `trigger()` only while it is deliverable; masking
 * and pending bits stay in the capability.
 */
export interface MsiVector {
  /** The message the vector sends from now on; undefined = not deliverable (masked, disabled, no Bus Master). */
  program(message: MsiMessage | undefined): void;
  /** Sends the programmed message (nothing when none is programmed). */
  trigger(): void;
  /**
   * An eventfd whose write raises this vector without a userspace exit, when the platform has one and the vector
   * is programmed (a vhost or VFIO backend signals it directly). Writes bypass the capability's masking: a backend
   * may write it only while the vector is deliverable.
   */
  readonly eventFd?: number;
}

/** The vectors of one capability, allocated once when its function is attached. */
export interface MsiVectorSet {
  readonly count: number;
  vector(index: number): MsiVector;
  /** Runs `fn`; the programming changes it makes reach the platform together (one routing update). */
  batch<T>(fn: () => T): T;
  /**
   * Releases the platform resources behind the vectors (irqfd routes) when the function is detached or the machine
   * closes; a later trigger takes the slow path (a plain MSI signal) and `eventFd` is gone. Calling it twice is
   * harmless.
   */
  close(): void;
}

/** Allocates vector sets; the machine hands one to each PCI function when it is attached. */
export interface MsiVectorFactory {
  /** `owner` names the function and capability in errors and traces, e.g. "virtio-net0 MSI-X". */
  create(owner: string, count: number): MsiVectorSet;
}

/**
 * Vectors delivered by signalling a plain `MsiController` with the programmed message on every trigger (tests,
 * and hosts without irqfd). `signals` counts deliveries, `dropped` triggers of vectors with no message.
 */
export class SignalMsiVectors implements MsiVectorFactory {
  signals = 0;
  dropped = 0;

  constructor(private readonly controller: MsiController) {}

  create(_owner: string, count: number): MsiVectorSet {
    const messages = new Array<MsiMessage | undefined>(count).fill(undefined);
    const vectors: MsiVector[] = messages.map((_, i) => ({
      program: (message) => {
        messages[i] = message;
      },
      trigger: () => {
        const m = messages[i];
        if (!m) {
          this.dropped++;
          return;
        }
        this.signals++;
        this.controller.signal(m);
      },
    }));
    return {
      count,
      vector: (index) => {
        const v = vectors[index];
        if (!v) throw new RangeError(`MSI vector ${index} of ${count}`);
        return v;
      },
      batch: (fn) => fn(),
      close: () => {},
    };
  }
}
