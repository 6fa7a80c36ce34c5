import { VirtioType } from "../constants.js";
import { VirtioDevice } from "../device.js";
import type { QueueDataPlane } from "../dataplane/api.js";
import { builtModule } from "../dataplane/module-url.js";
import { fillEntropy } from "./rng-fill.js";

export interface RngOptions {
  /**
   * Where requests run: `worker` (default) on a data-plane thread of the queue's own (rng-worker.ts) when guest
   * RAM is memfd-backed; `main` (or a host that allows no worker) on the JS thread.
   */
  dataplane?: "worker" | "main";
}

/** virtio-rng (virtio 1.x, 5.4): one request queue filled from the host's CSPRNG. No features, no config. */
export class VirtioRng extends VirtioDevice {
  readonly type = VirtioType.ENTROPY;
  readonly queueSizes = [256];
  readonly features = 0n;
  readonly config = new Uint8Array(0);
  private readonly dataplaneKind: "worker" | "main";

  constructor(options: RngOptions = {}) {
    super();
    this.dataplaneKind = options.dataplane ?? "worker";
  }

  override dataPlane(_queue: number): QueueDataPlane | undefined {
    return this.dataplaneKind === "worker" ? { module: builtModule("devices/rng-worker.js") } : undefined;
  }

  /** The JS thread's path: where no worker can run, or with `dataplane: "main"`. */
  notify(_queue: number): void {
    this.drain(0, (chain) => fillEntropy(this.context!.memory, chain));
  }
}
