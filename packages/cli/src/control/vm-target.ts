import type { PciDevice } from "@vmm/core";
import { ConfigurationError } from "@vmm/core";
import type { VcpuRegisters, VirtualMachine } from "../arch/machine.js";
import { collectStats } from "../stats.js";
import type { ControlEvent, VmStats, VmStatus } from "./protocol.js";
import type { ControlTarget } from "./server.js";

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
  private stopping = false;
  private readonly startedAt = new Date();

  constructor(
    private readonly vm: VmIdentity,
    private readonly requestStop: () => void,
    private readonly emit: (event: ControlEvent["event"]) => void,
    private readonly onProblem: (problem: string) => void,
  ) {}

  /** The machine now running (after assembly), with the devices created for it. */
  attach(machine: VirtualMachine, devices: readonly PciDevice[]): void {
    this.machine = machine;
    this.devices = devices;
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

  private runningMachine(what: string): VirtualMachine {
    if (this.stopping) throw new ConfigurationError(`${this.vm.name} is stopping; it cannot be ${what}`);
    if (!this.machine) throw new ConfigurationError(`${this.vm.name} is still starting; it cannot be ${what} yet`);
    return this.machine;
  }
}
