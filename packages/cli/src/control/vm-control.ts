import type { Logger } from "@vmm/core";
import { controlDir, socketPath } from "./paths.js";
import { ControlServer } from "./server.js";
import { VmControlTarget, type VmIdentity } from "./vm-target.js";

/** A `vmm run`'s control socket and the VM it answers for. */
export interface VmControl {
  readonly target: VmControlTarget;
  readonly file: string;
  close(): Promise<void>;
}

/**
 * Opens the control socket of the VM `vm.name` (README "Control socket") before anything is built: a name a live
 * VM holds is refused here. `onStop` is what `vmm stop` does (the same stop as SIGTERM's).
 */
export async function openVmControl(vm: VmIdentity, onStop: () => void, logger: Logger, env: NodeJS.ProcessEnv = process.env): Promise<VmControl> {
  const dir = controlDir(env);
  const file = socketPath(dir, vm.name);
  let server: ControlServer | undefined;
  const target = new VmControlTarget(vm, onStop, (event) => server?.emit(event, vm.name), (problem) => logger.warn(problem));
  server = await ControlServer.open(dir, file, vm.name, target);
  const opened = server;
  return { target, file, close: () => opened.close() };
}
