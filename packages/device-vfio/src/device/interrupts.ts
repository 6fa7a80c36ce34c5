// A passthrough device's interrupts: which of INTx, MSI and MSI-X the device signals (the one the guest enabled,
// INTx when neither MSI nor MSI-X is on), and where its eventfds lead.
//
// - MSI / MSI-X: each vector's eventfd is the platform's (core MsiVector.eventFd: a KVM irqfd on the vector's
//   route) while the vector is deliverable, so the device raises the guest interrupt with no userspace hop. While
//   the guest masks it (vector mask, function mask, MSI-X or Bus Master off) or its route is gone, the device's fd
//   for it is switched to a "pending" eventfd of the model's: a signal there sets the vector's pending bit (the PBA
//   for MSI-X), and the framework sends it when the guest unmasks.
// - INTx: the device's trigger eventfd drives the guest line through the line's irqfd with a resample fd, so
//   neither the interrupt nor its EOI needs this process for delivery. The device is unmasked after the EOI by the
//   resample fd itself when the backend takes it as its unmask eventfd (kernel VFIO), else by an UNMASK message
//   the model sends when the resample fd fires (vfio-user). Without irqfd (a platform that lacks it, tests) the
//   model watches the trigger fd, asserts the line, and deasserts and unmasks when the guest next touches the
//   device's BARs, with mmapped areas unmapped meanwhile so that touch traps (what VMMs without a kernel irqchip
//   do).
// - Kernel VFIO allows one index at a time, so a switch disables the old index on the device before enabling the
//   new one; turning MSI off brings INTx back (the switch back the Juno thread could not make).
import type { Handle, Logger } from "@vmm/core";
import type { EventFd } from "@vmm/host-io";
import type { FunctionIntx, MsiCapability, MsixCapability } from "@vmm/pci";
import { VfioBackendLostError, VfioIrq, type VfioBackend, type VfioIrqSet } from "../backend/backend.js";

/** How the device's INTx is unmasked after the guest's EOI. */
export type IntxUnmask = "eventfd" | "message";

/** Counters a test or a trace reads; see VfioPciFunction.stats. */
export interface VfioPciStats {
  /** Interrupts the device signalled that passed through this process (pending vectors, INTx without irqfd). */
  userspaceInterrupts: number;
  /** UNMASK messages sent for INTx after a resample (the "message" unmask path). */
  intxUnmasks: number;
  /** BAR accesses that trapped to the backend. */
  trappedReads: number;
  trappedWrites: number;
  /** Backend calls that failed (each kind logged once). */
  backendErrors: number;
}

/** The interrupt index a passthrough device signals: INTx, MSI, MSI-X, or none (no INTx and neither enabled). */
export type VfioInterruptMode = "none" | "intx" | "msi" | "msix";
type Mode = VfioInterruptMode;

/** What the interrupt logic needs from its function. */
export interface InterruptHost {
  readonly name: string;
  readonly backend: VfioBackend;
  readonly logger: Logger;
  readonly stats: VfioPciStats;
  readonly intx: FunctionIntx;
  readonly hasIntx: boolean;
  readonly msi: MsiCapability | undefined;
  readonly msix: MsixCapability | undefined;
  readonly intxUnmask: IntxUnmask;
  createEventFd(): EventFd;
  /** INTx without irqfd: make every BAR access trap until `resumeMappings`. */
  suspendMappings(): void;
  resumeMappings(): void;
}

export class VfioInterrupts {
  private mode: Mode = "none";
  private held = true;
  private closed = false;
  private readonly warned = new Set<string>();
  // INTx
  private trigger: EventFd | undefined;
  private resample: EventFd | undefined;
  private route: Handle | undefined;
  private asserted = false;
  // MSI / MSI-X: what the device has for each vector now, and the model's pending eventfds.
  private deviceFds: number[] = [];
  private readonly pending = new Map<string, EventFd>();

  constructor(private readonly host: InterruptHost) {}

  /** The index the device signals now. */
  get current(): Mode {
    return this.mode;
  }

  /** Starts following the guest (at attach, or after `hold`). */
  release(): void {
    if (this.closed) return;
    this.held = false;
    this.sync();
  }

  /** Turns the device's interrupts off and stops following the guest until `release` (around a reset). */
  hold(): void {
    this.held = true;
    this.leave();
  }

  /** Brings the device's interrupt index and its eventfds in line with what the guest programmed. */
  sync(): void {
    if (this.held || this.closed) return;
    const want = this.desired();
    const msi = this.host.msi;
    if (want === this.mode && want === "msi" && msi && this.deviceFds.length !== this.msiCount(msi)) this.leave();
    if (want !== this.mode) {
      this.leave();
      this.enter(want);
    } else if (want === "msi" || want === "msix") {
      this.updateVectors(want);
    }
  }

  /** The guest changed command.INTx-disable (the device sees the bit too, forwarded). */
  intxDisableChanged(disabled: boolean): void {
    if (this.mode !== "intx" || disabled) return;
    // A device automasked when the guest disabled INTx waits for an unmask that no EOI will bring now.
    this.call("INTx unmask", { action: "unmask", index: VfioIrq.INTX, start: 0, count: 1 });
  }

  /** A trapped BAR access: for INTx without irqfd, the end of the guest's interrupt handling. */
  barAccessed(): void {
    if (!this.asserted) return;
    this.asserted = false;
    this.host.intx.set(false);
    this.host.stats.intxUnmasks++;
    this.call("INTx unmask", { action: "unmask", index: VfioIrq.INTX, start: 0, count: 1 });
    this.host.resumeMappings();
  }

  close(): void {
    if (this.closed) return;
    this.leave();
    this.closed = true;
    for (const fd of this.pending.values()) fd.close();
    this.pending.clear();
    this.trigger?.close();
    this.resample?.close();
  }

  private desired(): Mode {
    const { msi, msix, hasIntx } = this.host;
    if (msix?.enabled) return "msix";
    if (msi?.enabled) return "msi";
    return hasIntx ? "intx" : "none";
  }

  private enter(mode: Mode): void {
    this.mode = mode;
    if (mode === "intx") this.startIntx();
    else if (mode === "msi" || mode === "msix") this.updateVectors(mode);
  }

  private leave(): void {
    const mode = this.mode;
    this.mode = "none";
    if (mode === "intx") this.stopIntx();
    if (mode === "msi" || mode === "msix") {
      this.deviceFds = [];
      this.call(`${mode} disable`, { action: "trigger-disable", index: mode === "msi" ? VfioIrq.MSI : VfioIrq.MSIX });
    }
  }

  private startIntx(): void {
    const trigger = (this.trigger ??= this.host.createEventFd());
    const resample = (this.resample ??= this.host.createEventFd());
    const irqfd = this.host.intx.irqfd;
    if (!this.call("INTx trigger", { action: "trigger", index: VfioIrq.INTX, start: 0, fds: [trigger.fd] })) return;
    if (irqfd) {
      this.route = irqfd(trigger.fd, resample.fd);
      const byEventfd = this.host.intxUnmask === "eventfd" && this.call("INTx unmask eventfd", { action: "unmask-fd", index: VfioIrq.INTX, fd: resample.fd }, false);
      if (!byEventfd) {
        resample.onSignal(() => {
          this.host.stats.intxUnmasks++;
          this.call("INTx unmask", { action: "unmask", index: VfioIrq.INTX, start: 0, count: 1 });
        });
      }
    } else {
      trigger.onSignal(() => {
        this.host.stats.userspaceInterrupts++;
        if (this.asserted || this.mode !== "intx") return;
        this.asserted = true;
        this.host.intx.set(true);
        this.host.suspendMappings();
      });
    }
  }

  private stopIntx(): void {
    this.call("INTx disable", { action: "trigger-disable", index: VfioIrq.INTX });
    this.route?.remove();
    this.route = undefined;
    this.trigger?.offSignal();
    this.resample?.offSignal();
    if (this.asserted) {
      this.asserted = false;
      this.host.intx.set(false);
      this.host.resumeMappings();
    }
  }

  /** Vectors of the index the device signals: as many as the guest allocated (MSI) or the table has (MSI-X). */
  private msiCount(msi: MsiCapability): number {
    return Math.min(msi.enabledVectors, this.signalled(VfioIrq.MSI));
  }

  private signalled(index: number): number {
    try {
      return this.host.backend.irqInfo(index).count;
    } catch {
      return 0;
    }
  }

  /**
   * Gives each vector the platform's eventfd while it is deliverable, else the model's pending eventfd; sends
   * only what changed, one SET_IRQS per run of consecutive vectors.
   */
  private updateVectors(mode: "msi" | "msix"): void {
    const index = mode === "msi" ? VfioIrq.MSI : VfioIrq.MSIX;
    const cap = mode === "msi" ? this.host.msi! : this.host.msix!;
    const count = mode === "msi" ? this.msiCount(this.host.msi!) : Math.min(this.host.msix!.vectors, this.signalled(VfioIrq.MSIX));
    const want = Array.from({ length: count }, (_, v) => cap.vectorEventFd(v) ?? this.pendingFd(mode, v).fd);
    const had = this.deviceFds;
    let v = 0;
    while (v < count) {
      if (had[v] === want[v]) {
        v++;
        continue;
      }
      let end = v + 1;
      while (end < count && had[end] !== want[end]) end++;
      // A fresh enable must name every vector at once (it sets the count the device enables).
      const start = had.length === 0 ? 0 : v;
      const stop = had.length === 0 ? count : end;
      if (!this.call(`${mode} vectors`, { action: "trigger", index, start, fds: want.slice(start, stop) })) return;
      for (let i = start; i < stop; i++) had[i] = want[i]!;
      v = stop;
    }
    this.deviceFds = had;
  }

  private pendingFd(mode: "msi" | "msix", vector: number): EventFd {
    const key = `${mode}:${vector}`;
    let fd = this.pending.get(key);
    if (!fd) {
      fd = this.host.createEventFd();
      fd.onSignal(() => {
        this.host.stats.userspaceInterrupts++;
        // Masked: the pending bit is set; deliverable again by now: sent (from this process).
        (mode === "msi" ? this.host.msi : this.host.msix)?.notify(vector);
      });
      this.pending.set(key, fd);
    }
    return fd;
  }

  /** One SET_IRQS; a failure is counted and logged once per kind (a lost backend stops the VM elsewhere). */
  private call(what: string, request: VfioIrqSet, log = true): boolean {
    try {
      this.host.backend.setIrqs(request);
      return true;
    } catch (e) {
      this.host.stats.backendErrors++;
      if (log && !(e instanceof VfioBackendLostError) && !this.warned.has(what)) {
        this.warned.add(what);
        this.host.logger.warn(`${this.host.name}: ${what} (VFIO_DEVICE_SET_IRQS) failed: ${(e as Error).message}`);
      }
      return false;
    }
  }
}
