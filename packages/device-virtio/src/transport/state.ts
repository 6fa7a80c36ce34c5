import { SnapshotError, type DeviceState, type GuestMemory, type InterruptLine, type Logger } from "@vmm/core";
import { bit, FeatureBit, Isr, NO_VECTOR, Status } from "../constants.js";
import type { VirtioContext, VirtioDevice } from "../device.js";
import type { QueueDataPlane } from "../dataplane/api.js";
import { Route } from "../dataplane/protocol.js";
import { dataPlaneUsable, QueueWorkerHost } from "../dataplane/queue-worker.js";
import { type QueueOptions, SplitQueue } from "../virtqueue/split-ring.js";
import { IsrRegister } from "./isr.js";
import { decodeTransportState, encodeTransportState, type TransportIdentity } from "./snapshot.js";

/** How the transport reaches the PCI function's interrupt machinery. */
export interface InterruptSink {
  /** MSI-X is enabled in the capability's message control. */
  msixEnabled(): boolean;
  /** Entries in the MSI-X table (0 without MSI-X). */
  msixVectors(): number;
  /** Sends MSI-X vector `vector` (the capability handles masking and pending bits). */
  msix(vector: number): void;
  /** The function's INTx line, once attached. */
  intx(): InterruptLine | undefined;
  /**
   * The eventfd that raises MSI-X `vector` with no userspace hop while it is deliverable (enabled, unmasked, Bus
   * Master Enable set, an irqfd route in place), else undefined. Data-plane workers signal it directly; the owner
   * calls `VirtioTransport.interruptRoutesChanged()` whenever the answer may have changed.
   */
  msixEventFd?(vector: number): number | undefined;
}

/** 32-bit feature words the transport knows: bits 0-63. */
const FEATURE_WORDS = 2;

/** Word `select` of `features`, unsigned; selects are guest-chosen 32-bit values, so anything else reads 0. */
function featureWord(features: bigint, select: number): number {
  const word = select >>> 0;
  return word < FEATURE_WORDS ? Number((features >> BigInt(32 * word)) & 0xffff_ffffn) : 0;
}

/** Ring features every device offers. */
const RING_FEATURES = bit(FeatureBit.RING_INDIRECT_DESC) | bit(FeatureBit.RING_EVENT_IDX);

/**
 * The transport-independent state of one virtio function (virtio 1.x, 2 and 3): device status, feature
 * negotiation, the queues' programmed layout, MSI-X vectors, the ISR and configuration generation. The modern
 * and legacy register files are views over this state.
 */
export class VirtioTransport {
  status = 0;
  deviceFeatureSelect = 0;
  driverFeatureSelect = 0;
  /** Exactly what the driver wrote, per 32-bit word: never OR-accumulated. */
  driverFeatures = 0n;
  configVector = NO_VECTOR;
  configGeneration = 0;
  queueSelect = 0;
  /** The last register file the driver used for negotiation: legacy drivers have no FEATURES_OK. */
  legacy = false;
  readonly offered: bigint;
  readonly queues: readonly SplitQueue[];
  readonly isr: IsrRegister;
  private context: (VirtioContext & { active: boolean }) | undefined;
  /**
   * PCI Bus Master Enable. While clear the device touches no guest memory: doorbells are remembered and served,
   * and late completions published, once it is set again. Without PCI (tests, benchmarks) it stays set.
   */
  private busMaster = true;
  /**
   * Between `quiesce` and `resume` (a snapshot): doorbells are remembered, not served, and the device takes no
   * host input into guest memory; work already in flight still completes.
   */
  private quiesced = false;
  /** Queues notified while bus mastering was off or the transport quiesced: served when both allow. */
  private readonly deferredKicks = new Set<number>();
  /** Device work (completions) waiting for bus mastering; dropped on reset. */
  private heldWork: (() => void)[] = [];
  /**
   * Per queue, its data-plane worker when the device asked for one and guest RAM is memfd-backed. While a queue
   * is lent to its worker, the worker owns the ring cursors and the interrupt decision; the transport takes the
   * queue back (at a request boundary) whenever it must be the only one touching it: reset, Bus Master Enable
   * off, quiesce, DEVICE_NEEDS_RESET.
   */
  private planes: readonly (QueueWorkerHost | undefined)[];

  constructor(
    readonly device: VirtioDevice,
    readonly memory: GuestMemory,
    readonly interrupts: InterruptSink,
    readonly logger: Logger,
    readonly name: string,
  ) {
    this.offered = device.features | RING_FEATURES | bit(FeatureBit.VERSION_1);
    this.queues = device.queueSizes.map((max, i) => new SplitQueue(i, max, memory));
    this.isr = new IsrRegister(() => interrupts.intx());
    device.onConfigChange = () => this.configChanged();
    const usable = dataPlaneUsable(memory);
    this.planes = this.queues.map((q) => {
      let plane: QueueDataPlane | undefined;
      try {
        plane = usable ? device.dataPlane(q.index) : undefined;
      } catch (e) {
        logger.warn(`${name}: queue ${q.index} stays on the JS thread: ${e instanceof Error ? e.message : String(e)}`);
      }
      if (!plane) return undefined;
      return new QueueWorkerHost({
        plane,
        name,
        queue: q.index,
        maxSize: q.maxSize,
        maxChainBytes: device.maxChainBytes,
        memory,
        logger,
        onSignal: () => {
          if (this.context?.active) this.raise(q.vector, Isr.QUEUE);
        },
        onFail: (e) => this.context?.fail(e),
        onOrphaned: () => this.device.queueReturned(q.index),
        onOrphanDoorbell: () => this.notify(q.index),
      });
    });
  }

  /** The eventfd a queue's doorbell should signal directly (its data-plane worker waits on it), if it has one. */
  doorbellEventFd(queue: number): number | undefined {
    return this.planes[queue]?.kickFd;
  }

  /** The data-plane worker of `queue` (tests and traces: `isLent`, `stats`). */
  dataPlane(queue: number): QueueWorkerHost | undefined {
    return this.planes[queue];
  }

  /** MSI-X enable, masks, vectors' routes or Bus Master Enable changed: tells lent queues where interrupts go. */
  interruptRoutesChanged(): void {
    this.planes.forEach((plane, i) => {
      if (plane?.isLent) plane.setRoute(this.routeOf(this.queues[i]!));
    });
  }

  /** The driver wrote a queue's MSI-X vector (beyond the table reads back NO_VECTOR, 4.1.5.1.2). */
  setQueueVector(queue: SplitQueue, vector: number): void {
    queue.vector = this.validVector(vector);
    this.interruptRoutesChanged();
  }

  /** A legacy driver released a queue (PFN 0): taken back from its worker, then reset. */
  releaseQueue(queue: SplitQueue): void {
    this.reclaim(queue.index);
    queue.reset();
  }

  /** Status 0: everything the driver set up is forgotten (2.4). */
  reset(): void {
    this.stopDevice();
    this.status = 0;
    this.deviceFeatureSelect = this.driverFeatureSelect = 0;
    this.driverFeatures = 0n;
    this.configVector = NO_VECTOR;
    this.queueSelect = 0;
    this.legacy = false;
    for (const q of this.queues) q.reset();
    this.isr.reset();
  }

  /** The VM is going away: stop the device, drop in-flight work, raise nothing; data-plane threads end. */
  shutdown(): void {
    this.stopDevice();
    this.closePlanes();
  }

  /** Ends the data-plane threads (their hosts keep their stats); a closed host never takes its queue again. */
  private closePlanes(): void {
    for (const plane of this.planes) plane?.close();
  }

  get selectedQueue(): SplitQueue | undefined {
    return this.queues[this.queueSelect];
  }

  /** One 32-bit word of the offered features; a select naming no word reads 0 (4.1.4.3.1). */
  deviceFeatureWord(select: number): number {
    return featureWord(this.offered, select);
  }

  driverFeatureWord(select: number): number {
    return featureWord(this.driverFeatures, select);
  }

  /** Replaces one word of the driver's features; ignored for a select naming no word, or once FEATURES_OK is set. */
  writeDriverFeatureWord(select: number, value: number): void {
    const word = select >>> 0;
    if (word >= FEATURE_WORDS || this.status & Status.FEATURES_OK) return;
    const shift = BigInt(32 * word);
    this.driverFeatures = (this.driverFeatures & ~(0xffff_ffffn << shift)) | (BigInt(value >>> 0) << shift);
  }

  /** The legacy guest-features register: 32 bits, accepted at once (unknown bits are dropped). */
  writeLegacyFeatures(value: number): void {
    if (this.status & Status.DRIVER_OK) return;
    this.legacy = true;
    this.driverFeatures = BigInt(value >>> 0) & this.offered & 0xffff_ffffn;
  }

  writeStatus(value: number): void {
    value &= 0xff;
    if (value === 0) return this.reset();
    const previous = this.status;
    if (value & Status.FEATURES_OK && !(previous & Status.FEATURES_OK) && !this.featuresAcceptable()) {
      value &= ~Status.FEATURES_OK; // the driver reads the status back and sees the features were refused
    }
    this.status = (value & ~Status.DEVICE_NEEDS_RESET) | (previous & Status.DEVICE_NEEDS_RESET);
    // A driver begins (ACKNOWLEDGE): the data-plane threads start now, so their start-up (about 50 ms here)
    // overlaps the driver's set-up instead of delaying its first request after DRIVER_OK.
    if (previous === 0) for (const plane of this.planes) plane?.prepare();
    if (value & Status.DRIVER_OK && !(previous & Status.DRIVER_OK)) this.activate();
  }

  /** Modern negotiation: only offered bits, and VERSION_1 is mandatory (2.2.1, 6.1). */
  private featuresAcceptable(): boolean {
    const unknown = this.driverFeatures & ~this.offered;
    if (unknown) {
      this.logger.warn(`${this.name}: driver accepted unoffered features 0x${unknown.toString(16)}`);
      return false;
    }
    if (!(this.driverFeatures & bit(FeatureBit.VERSION_1))) {
      this.logger.warn(`${this.name}: driver did not accept VIRTIO_F_VERSION_1`);
      return false;
    }
    return true;
  }

  /** MSI-X vector numbers beyond the table read back as NO_VECTOR (4.1.5.1.2). */
  validVector(vector: number): number {
    return vector !== NO_VECTOR && vector < this.interrupts.msixVectors() ? vector : NO_VECTOR;
  }

  /** A queue was enabled (modern queue_enable, legacy PFN) while the device is already running. */
  queueEnabled(queue: SplitQueue): void {
    if (this.context?.active && this.startQueue(queue)) this.lend(queue);
  }

  /** The driver's doorbell for `queue`, from an ioeventfd or a trapped write. */
  notify(queue: number): void {
    if (!this.context && this.legacy && this.status & Status.DRIVER && !(this.status & Status.FAILED)) {
      this.activate(); // legacy drivers may kick before DRIVER_OK (virtio 1.x, 4.1.5.1.3.1 legacy notes)
    }
    if (!this.context?.active || queue >= this.queues.length || !this.queues[queue]!.isStarted) return;
    const plane = this.planes[queue];
    if (plane?.isLent) return plane.ring(); // a trapped write, or a registry that cannot hand the worker the eventfd
    if (!this.busMaster || this.quiesced) {
      this.deferredKicks.add(queue); // served when the driver sets Bus Master Enable, or on resume
      return;
    }
    this.device.notify(queue);
  }

  /** Whether the device may touch guest memory now (PCI Bus Master Enable). */
  get busMasterEnabled(): boolean {
    return this.busMaster;
  }

  /**
   * PCI Bus Master Enable changed. Setting it publishes the completions that waited, serves the queues notified
   * meanwhile, lets the device resume host-side backlogs, and signals what that produced.
   */
  setBusMaster(enabled: boolean): void {
    if (enabled === this.busMaster) return;
    if (!enabled) this.reclaimAll(); // the worker finishes the chain it is on before DMA stops
    this.busMaster = enabled;
    if (enabled) this.release();
  }

  /**
   * Snapshots, step 1 (vCPUs paused): from now on doorbells (an ioeventfd may still fire) are remembered and host
   * input (net frames, console bytes) stays in the device's backlog, which `saveState` carries; then waits for
   * the device's work in flight (blk I/O) to complete and be published to the used ring, with its interrupt.
   * `resume` ends it.
   */
  async quiesce(): Promise<void> {
    this.quiesced = true;
    this.reclaimAll();
    await this.device.quiesce();
  }

  /** After a snapshot the VM goes on: the doorbells rung meanwhile are served and held host input delivered. */
  resume(): void {
    if (!this.quiesced) return;
    this.quiesced = false;
    this.release();
  }

  /**
   * The transport's state (layout version 1): status, both feature words, selects, config vector and generation,
   * ISR, every queue's layout, vector and ring cursors, the doorbells not served yet, and the device's own state.
   * Completions held back by a clear Bus Master Enable cannot be saved: a SnapshotError.
   */
  saveState(): DeviceState {
    if (this.heldWork.length) {
      throw new SnapshotError(`${this.name}: ${this.heldWork.length} completions wait for Bus Master Enable (the driver cleared it with I/O in flight)`);
    }
    if (this.planes.some((p) => p?.isLent)) throw new SnapshotError(`${this.name}: a data-plane queue is running (quiesce first)`);
    this.reclaimAll(); // doorbells rung into a worker's eventfd since it stopped become saved doorbells
    return encodeTransportState(this.identity(), {
      status: this.status,
      deviceFeatureSelect: this.deviceFeatureSelect >>> 0,
      driverFeatureSelect: this.driverFeatureSelect >>> 0,
      driverFeatures: this.driverFeatures,
      configVector: this.configVector,
      configGeneration: this.configGeneration,
      queueSelect: this.queueSelect,
      legacy: this.legacy,
      isr: this.isr.value,
      running: this.context?.active === true,
      kicks: [...this.deferredKicks],
      queues: this.queues.map((q) => q.saved()),
      device: this.device.saveState(this.name),
    });
  }

  /**
   * Restores `saveState` output into this transport (its device built with the same options), with Bus Master
   * Enable as the PCI function restored it: a state of another device type, features, configuration or queue
   * layout is a SnapshotError, checked before anything changes. A running device is activated again: its
   * enabled queues start at the saved ring positions (the rings themselves are in guest memory, which must be
   * restored first), and the doorbells that were rung but not served are served now, so the device processes
   * exactly the chains the guest made available and it had not taken.
   */
  restoreState(state: DeviceState, busMaster: boolean): void {
    const p = decodeTransportState(state, this.identity());
    this.stopDevice();
    this.status = p.status;
    this.deviceFeatureSelect = p.deviceFeatureSelect;
    this.driverFeatureSelect = p.driverFeatureSelect;
    this.driverFeatures = p.driverFeatures;
    this.configVector = p.configVector;
    this.configGeneration = p.configGeneration;
    this.queueSelect = p.queueSelect;
    this.legacy = p.legacy;
    this.isr.restore(p.isr);
    this.queues.forEach((q, i) => q.restore(p.queues[i]!));
    // Data-plane workers serve the restored queues too: they view the machine's own RAM mapping, so with a lazy
    // restore the pages they touch are filled through userfaultfd like the vCPUs' (activate() lends the queues).
    this.busMaster = busMaster;
    this.quiesced = false;
    this.device.restoreState(p.device, this.name);
    if (!p.running) return;
    this.activate();
    for (const q of p.kicks) this.notify(q);
  }

  private identity(): TransportIdentity {
    return {
      name: this.name,
      type: this.device.type,
      offered: this.offered,
      config: this.device.config,
      queueSizes: this.device.queueSizes,
      vectors: this.interrupts.msixVectors(),
    };
  }

  /**
   * Bus mastering is on (again) or a snapshot is over: publishes the completions that waited, serves the queues
   * notified meanwhile, lets the device resume host-side backlogs, and signals what that produced.
   */
  private release(): void {
    const ctx = this.context;
    if (!this.busMaster || !ctx?.active) return;
    const held = this.heldWork;
    this.heldWork = [];
    for (const work of held) if (ctx.active) work();
    if (this.quiesced) return;
    for (const q of this.queues) if (ctx.active && q.isStarted) this.lend(q);
    const notified = [...this.deferredKicks];
    this.deferredKicks.clear();
    for (const q of notified) this.notify(q);
    if (!ctx.active) return;
    this.device.busMasterResumed();
    for (const q of this.queues) if (ctx.active && q.isStarted) this.signalQueue(q.index); // signals swallowed while off
  }

  /** Signals a used-buffer interrupt for `queue` if the ring asks for one. */
  signalQueue(index: number): void {
    const q = this.queues[index];
    if (!q || this.planes[index]?.isLent || !q.shouldInterrupt()) return; // a lent queue's worker decides
    this.raise(q.vector, Isr.QUEUE);
  }

  /** The device changed its configuration space. */
  configChanged(): void {
    this.configGeneration = (this.configGeneration + 1) & 0xff;
    if (this.status & Status.DRIVER_OK) this.raise(this.configVector, Isr.CONFIG);
  }

  /** The driver broke the rules: DEVICE_NEEDS_RESET and a configuration interrupt (2.1.2). */
  needsReset(error: unknown): void {
    this.logger.warn(`${this.name}: device needs reset: ${error instanceof Error ? error.message : String(error)}`);
    this.stopDevice();
    if (this.status & Status.DEVICE_NEEDS_RESET) return;
    this.status |= Status.DEVICE_NEEDS_RESET;
    if (this.status & Status.DRIVER_OK) this.raise(this.configVector, Isr.CONFIG);
  }

  /**
   * Where a lent queue's used-buffer interrupts go: INTx needs the ISR, so the JS thread; NO_VECTOR means none;
   * otherwise the vector's irqfd while it is deliverable, else the JS thread (which sets the pending bit).
   */
  private routeOf(q: SplitQueue): number {
    if (!this.interrupts.msixEnabled()) return Route.HANDBACK;
    if (q.vector === NO_VECTOR) return Route.NONE;
    return this.interrupts.msixEventFd?.(q.vector) ?? Route.HANDBACK;
  }

  /** Hands a started queue to its data-plane worker, when it has one and the device may use guest memory. */
  private lend(q: SplitQueue): void {
    const plane = this.planes[q.index];
    if (!plane?.alive || plane.isLent || !this.context?.active || !this.busMaster || this.quiesced || !q.isStarted) return;
    this.device.queueLending(q.index);
    if (!this.context?.active) return; // the device failed while it still owned the ring
    plane.setRoute(this.routeOf(q));
    plane.lend(q, this.queueOptions(), this.driverFeatures);
  }

  /**
   * Takes queue `index` back from its worker, if it has one, and tells the device when it was lent. Returns
   * whether doorbells may be unserved (see `QueueWorkerHost.reclaim`).
   */
  private reclaim(index: number): boolean {
    const plane = this.planes[index];
    if (!plane) return false;
    const wasLent = plane.isLent;
    const unserved = plane.reclaim(this.queues[index]!);
    if (wasLent) this.device.queueReturned(index);
    return unserved;
  }

  /**
   * Takes every lent queue back at a request boundary (its cursors into the SplitQueue). A doorbell that the
   * worker had not served yet, for a ring that still holds chains, becomes a deferred doorbell.
   */
  private reclaimAll(): void {
    this.queues.forEach((q, i) => {
      if (this.reclaim(i) && this.context?.active && q.isStarted && this.holdsChains(q)) this.deferredKicks.add(i);
    });
  }

  private holdsChains(q: SplitQueue): boolean {
    try {
      return q.pending() > 0;
    } catch {
      return true; // a broken avail index: serving the doorbell reports it
    }
  }

  /**
   * With MSI-X enabled an event goes to its vector (none for NO_VECTOR: the PCI rules forbid INTx while MSI-X is
   * on); otherwise the ISR bit is set and INTx asserted. The configuration bit is always set in the ISR (4.1.4.5).
   */
  private raise(vector: number, isrBit: number): void {
    if (this.interrupts.msixEnabled()) {
      if (isrBit === Isr.CONFIG) this.isr.raise(isrBit, false);
      if (vector !== NO_VECTOR) this.interrupts.msix(vector);
      return;
    }
    this.isr.raise(isrBit, true);
  }

  private activate(): void {
    if (!this.legacy && !(this.status & Status.FEATURES_OK)) {
      return this.needsReset(new Error("DRIVER_OK without FEATURES_OK"));
    }
    if (this.status & Status.DEVICE_NEEDS_RESET) return;
    const transport = this;
    const context = {
      memory: this.memory,
      logger: this.logger,
      features: this.driverFeatures,
      active: true,
      // Quiesced: no new guest-memory work (chains, host input); completions of work in flight still go through.
      get busMaster() {
        return transport.busMaster && !transport.quiesced;
      },
      whenBusMaster: (work: () => void) => {
        if (!context.active) return;
        if (transport.busMaster) work();
        else transport.heldWork.push(work);
      },
      queue: (i: number) => transport.queues[i]!,
      // The interrupt decision reads the avail ring; while bus mastering is off setBusMaster signals later.
      signal: (i: number) => {
        if (context.active && transport.busMaster) transport.signalQueue(i);
      },
      fail: (e: unknown) => {
        if (context.active) transport.needsReset(e);
      },
    };
    this.context = context;
    for (const q of this.queues) if (q.enabled && !this.startQueue(q)) return;
    this.device.activate(context);
    for (const q of this.queues) this.lend(q);
  }

  private queueOptions(): QueueOptions {
    return {
      eventIdx: (this.driverFeatures & bit(FeatureBit.RING_EVENT_IDX)) !== 0n,
      indirect: (this.driverFeatures & bit(FeatureBit.RING_INDIRECT_DESC)) !== 0n,
      maxChainBytes: this.device.maxChainBytes,
    };
  }

  private startQueue(q: SplitQueue): boolean {
    try {
      q.start(this.queueOptions());
      return true;
    } catch (e) {
      this.needsReset(e);
      return false;
    }
  }

  private stopDevice(): void {
    for (const i of this.queues.keys()) this.reclaim(i);
    this.deferredKicks.clear();
    this.heldWork = [];
    if (!this.context) return;
    const wasActive = this.context.active;
    this.context.active = false;
    this.context = undefined;
    if (wasActive) this.device.deactivate();
  }
}
