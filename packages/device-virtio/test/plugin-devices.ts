import { type DeviceType, GuestMemory, MemoryLogger, Tokens, TrappingIoEvents, validateOptions } from "@vmm/core";
import { container } from "tsyringe";
import plugin from "../src/plugin.js";
import type { VirtioPciFunction } from "../src/transport/virtio-pci.js";

/** A VM's container as the plugin sees it, without KVM: 1 MiB of guest RAM (or `memory`), trapping doorbells, a memory logger. */
export function vmContainer(memory = new GuestMemory([{ gpa: 0, bytes: new Uint8Array(1 << 20) }])) {
  const c = container.createChildContainer();
  c.register(Tokens.GuestMemory, { useValue: memory });
  c.register(Tokens.IoEvents, { useValue: new TrappingIoEvents() });
  c.register(Tokens.Logger, { useValue: new MemoryLogger() });
  return c;
}

/** Creates a device of the plugin's `type` from raw `--device` options, as the cli does (validated first). */
export async function createPluginDevice(type: string, raw: Record<string, unknown>, name = `${type}0`, memory?: GuestMemory): Promise<VirtioPciFunction> {
  const c = vmContainer(memory);
  await plugin.register(c, {});
  const t = c.resolveAll<DeviceType>(Tokens.DeviceType).find((d) => d.type === type)!;
  const options = validateOptions(t.options, raw, { plugin: plugin.name, device: type });
  return (await t.create({ container: c, name }, options)) as VirtioPciFunction;
}
