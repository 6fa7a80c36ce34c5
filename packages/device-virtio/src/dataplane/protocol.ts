// The shared control block between the JS thread and a queue's worker: one Int32Array over a SharedArrayBuffer.
// Commands and acknowledgements are sequence-numbered so the JS thread can wait (Atomics.wait) for the worker to
// reach a request boundary; the ring cursors travel through the block when the queue changes hands.

/** Word indices of the control block. */
export const Ctl = {
  /** What the JS thread wants: a `Command`. Written before `SEQ` is bumped. */
  CMD: 0,
  /** Bumped with each command; the worker acknowledges by copying it into `ACK` at a request boundary. */
  SEQ: 1,
  ACK: 2,
  /** A `WorkerState`, for the JS thread's diagnostics and its wait loop (DEAD ends a wait at once). */
  STATE: 3,
  /** Where a used-buffer interrupt goes: an irqfd (>= 0), `Route.HANDBACK` or `Route.NONE`. */
  ROUTE: 4,
  /** 1 while the worker is between reading `ROUTE` and finishing its irqfd write (see `setRoute`). */
  SIGNALLING: 5,
  /** 1 while a handed-back interrupt waits for the JS thread (coalesces the messages). */
  HANDBACK_PENDING: 6,
  /** Ring cursors (16-bit values) and the queue's layout, valid while the JS thread owns the queue. */
  NEXT_AVAIL: 7,
  USED_IDX: 8,
  SIGNALLED_USED: 9,
  SIZE: 10,
  /** Ring addresses as [low, high] 32-bit words (unsigned values stored as int32). */
  DESC_LO: 11,
  DESC_HI: 12,
  DRIVER_LO: 13,
  DRIVER_HI: 14,
  DEVICE_LO: 15,
  DEVICE_HI: 16,
  /** QueueOptions: bit 0 EVENT_IDX, bit 1 INDIRECT_DESC. */
  RING_FLAGS: 17,
  /** Requests the worker completed (diagnostics and tests). */
  COMPLETED: 18,
  /** Interrupts the worker sent through the irqfd, and the ones it handed back. */
  IRQFD_SIGNALS: 19,
  HANDBACKS: 20,
  /** The negotiated features, as two 32-bit words (they change when the driver renegotiates after a reset). */
  FEATURES_LO: 21,
  FEATURES_HI: 22,
  WORDS: 23,
} as const;

export const Command = { PAUSE: 0, RUN: 1, EXIT: 2 } as const;
export const WorkerState = { LOADING: 0, PAUSED: 1, RUNNING: 2, FAILED: 3, DEAD: 4 } as const;
export const Route = { HANDBACK: -1, NONE: -2 } as const;
export const RingFlag = { EVENT_IDX: 1, INDIRECT: 2 } as const;

/** One RAM region as the worker sees it: the address of the machine's own mapping and where it sits in the guest. */
export interface WorkerRamRegion {
  readonly gpa: number;
  readonly length: number;
  readonly address: bigint;
}

/** What the worker thread is started with (`workerData`). */
export interface WorkerInit {
  readonly module: string;
  readonly data: unknown;
  readonly queue: number;
  readonly maxSize: number;
  readonly maxChainBytes: number;
  readonly name: string;
  readonly ram: readonly WorkerRamRegion[];
  readonly kickFd: number;
  readonly control: SharedArrayBuffer;
  readonly pollMicros: number;
}

/** Messages from the worker to the JS thread. */
export type WorkerMessage =
  | { readonly type: "signal" }
  | { readonly type: "fail"; readonly message: string }
  | { readonly type: "log"; readonly level: "debug" | "info" | "warn" | "error"; readonly message: string };
