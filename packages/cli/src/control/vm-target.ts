import type { PciDevice, StateValue } from "@vmm/core";
import { ConfigurationError } from "@vmm/core";
import type { VcpuRegisters, VirtualMachine } from "../arch/machine.js";
import { collectStats } from "../stats.js";
import type { ControlEvent, SnapshotReply, SnapshotThen, VmStats, VmStatus } from "./protocol.js";
import type { PowerdownResult, ScreenshotReply } from "./protocol.js";
import type { ControlTarget } from "./server.js";

/** A device that can show its picture as a PNG (the vesa device: `capturePng`). */
interface PngSource {
  readonly name: string;
  capturePng(): { readonly width: number; readonly height: number; readonly png: Uint8Array };
}

const isPngSource = (device: PciDevice): device is PciDevice & PngSource => typeof (device as Partial<PngSource>).capturePng === "function";

/** What `vmm run` knows about its VM before the machine exists. */
export interface VmIdentity {
  readonly name: string;
  readonly arch: string;
  readonly memory: number;
  readonly cpus: number;
}

/**
 * The VM of one `vmm run` as its control socket sees it: "starting" until a machine is attached, then running or
 * paused, "stopping" once a stop was asked for. A `--reboot` attaches each new machine in turn.
 */
export class VmControlTarget implements ControlTarget {
  private machine: VirtualMachine | undefined;
  private devices: readonly PciDevice[] = [];
  /** What a snapshot records beside the machine (how to run it again). */
  private record: StateValue = null;
  private snapshotting = false;
  private stopping = false;
  private readonly startedAt = new Date();

  constructor(
    private readonly vm: VmIdentity,
    private readonly requestStop: () => void,
    private readonly emit: (event: ControlEvent["event"]) => void,
    private readonly onProblem: (problem: string) => void,
  ) {}

  /** The machine now running (after assembly), with the devices created for it. */
  attach(machine: VirtualMachine, devices: readonly PciDevice[], record: StateValue = null): void {
    this.machine = machine;
    this.devices = devices;
    this.record = record;
    if (!this.stopping) this.emit("running");
  }

  /** The machine ended (a --reboot builds the next one): "starting" again until the next attach. */
  detach(): void {
    this.machine = undefined;
    this.devices = [];
  }

  /** Marks the VM as stopping (a signal, a fault, or `stop`), so that pause and resume are refused from now on. */
  markStopping(): void {
    if (this.stopping) return;
    this.stopping = true;
    this.emit("stopping");
  }

  status(): VmStatus {
    const state = this.stopping ? "stopping" : !this.machine ? "starting" : this.machine.paused ? "paused" : "running";
    return {
      name: this.vm.name,
      pid: process.pid,
      state,
      arch: this.vm.arch,
      startedAt: this.startedAt.toISOString(),
      uptimeMs: Date.now() - this.startedAt.getTime(),
      memory: this.vm.memory,
      cpus: this.vm.cpus,
      devices: this.devices.map((d) => d.name),
    };
  }

  pause(): void {
    const machine = this.runningMachine("paused");
    if (!machine.pause) throw new ConfigurationError(`${this.vm.name}: this ${this.vm.arch} machine cannot pause`);
    if (!machine.pause()) throw new ConfigurationError(`${this.vm.name} is already paused`);
    this.emit("paused");
  }

  resume(): void {
    const machine = this.runningMachine("resumed");
    if (!machine.resume?.()) throw new ConfigurationError(`${this.vm.name} is not paused`);
    this.emit("resumed");
  }

  stop(): void {
    this.markStopping();
    this.requestStop();
  }

  stats(): VmStats {
    if (!this.machine) throw new ConfigurationError(`${this.vm.name} is still starting; it has no counters yet`);
    return collectStats(this.machine, this.devices, this.onProblem);
  }

  registers(): readonly VcpuRegisters[] {
    if (!this.machine) throw new ConfigurationError(`${this.vm.name} is still starting; it has no vCPUs yet`);
    if (!this.machine.vcpuStates) throw new ConfigurationError(`${this.vm.name}: this ${this.vm.arch} machine cannot show its registers`);
    return this.machine.vcpuStates();
  }

  /**
   * Presses the ACPI power button; the guest decides what to do (`vmm stop` waits for it, then forces the stop).
   * Refused while starting, stopping or paused (a paused guest cannot act on it), and by a machine without one.
   */
  powerdown(): PowerdownResult {
    const machine = this.runningMachine("shut down");
    if (!machine.powerButton) throw new ConfigurationError(`${this.vm.name}: this ${this.vm.arch} machine has no power button`);
    if (machine.paused) throw new ConfigurationError(`${this.vm.name} is paused; its guest cannot shut down until it is resumed`);
    return { enabled: machine.powerButton() };
  }

  /** The display device's picture now, as PNG bytes (base64), also while paused; refused without a display device. */
  screenshot(): ScreenshotReply {
    if (!this.machine) throw new ConfigurationError(`${this.vm.name} is still starting; it has no display yet`);
    const display = this.devices.find(isPngSource);
    if (!display) throw new ConfigurationError(`${this.vm.name} has no display device (vmm run --device vesa gives it one)`);
    const { width, height, png } = display.capturePng();
    return { device: display.name, width, height, png: Buffer.from(png.buffer, png.byteOffset, png.byteLength).toString("base64") };
  }

  /**
   * Pauses the VM (unless it is paused), writes the snapshot, then stops it (`then` "stop"), leaves it paused
   * ("pause") or runs it ("resume"); without `then` it goes back to what it was. A failed snapshot leaves the VM as
   * it was.
   */
  async snapshot(dir: string, requested?: SnapshotThen): Promise<SnapshotReply> {
    const machine = this.runningMachine("snapshotted");
    if (!machine.saveSnapshot || !machine.pause) throw new ConfigurationError(`${this.vm.name}: this ${this.vm.arch} machine cannot take snapshots`);
    if (this.snapshotting) throw new ConfigurationError(`${this.vm.name}: a snapshot is being taken already`);
    this.snapshotting = true;
    const wasPaused = machine.paused === true;
    const then = requested ?? (wasPaused ? "pause" : "resume");
    if (!wasPaused && machine.pause()) this.emit("paused");
    let summary: Awaited<ReturnType<NonNullable<VirtualMachine["saveSnapshot"]>>>;
    try {
      summary = await machine.saveSnapshot(dir, this.record);
    } catch (error) {
      if (!wasPaused && machine.resume?.()) this.emit("resumed");
      throw error;
    } finally {
      this.snapshotting = false;
    }
    if (then === "stop") this.stop();
    else if (then === "resume" && machine.resume?.()) this.emit("resumed");
    return { dir, ...summary, state: this.status().state };
  }

  private runningMachine(what: string): VirtualMachine {
    if (this.stopping) throw new ConfigurationError(`${this.vm.name} is stopping; it cannot be ${what}`);
    if (!this.machine) throw new ConfigurationError(`${this.vm.name} is still starting; it cannot be ${what} yet`);
    return this.machine;
  }
}
