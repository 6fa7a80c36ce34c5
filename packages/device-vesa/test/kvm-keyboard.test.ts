import { MemoryLogger, Tokens, validateOptions, type DeviceType } from "@vmm/core";
import { buildGuest } from "@vmm/guest-kit";
import { kvmAvailability } from "@vmm/kvm-native";
import { Layout, Machine } from "@vmm/machine";
import { kvmTestGate } from "@vmm/test-support";
import { describe, expect, it } from "vitest";
import type { VesaDevice } from "../src/device.js";
import { RfbClient } from "../src/displays/vnc/client.js";
import type { VncDisplay } from "../src/displays/vnc/server.js";
import type { WebDisplay } from "../src/displays/web/server.js";
import plugin from "../src/plugin.js";
import { webSend } from "./support/web-keys.js";

const kvm = kvmTestGate("@vmm/device-vesa", { what: "KVM keyboard / boot tests", check: kvmAvailability });

async function vesa(machine: Machine, display: string): Promise<VesaDevice> {
  plugin.register(machine.container, {});
  const type = machine.container.resolveAll<DeviceType>(Tokens.DeviceType).find((t) => t.type === "vesa")!;
  const options = validateOptions(type.options, { display }, { plugin: plugin.name });
  const device = (await type.create({ container: machine.container, name: "vesa0" }, options)) as VesaDevice;
  machine.addPciDevice(device);
  return device;
}

/** A minimal bzImage (2.15 header) whose protected-mode part halts: enough for the loader to build boot_params. */
function bzImage(): Uint8Array {
  const b = new Uint8Array(5 * 512 + 4);
  const v = new DataView(b.buffer);
  b[0x1f1] = 4;
  b[0x201] = 0x6a;
  v.setUint32(0x202, 0x53726448, true);
  v.setUint16(0x206, 0x20f, true);
  v.setUint32(0x22c, 0x7fffffff, true);
  v.setUint16(0x236, 0x7f, true);
  v.setUint32(0x238, 2047, true);
  b.fill(0xf4, 5 * 512);
  return b;
}

describe.skipIf(!kvm.ok)("the VESA device with the machine under KVM", () => {
  it("VNC KeyEvents and the web page's keys reach the guest through the i8042 as set 1 scancodes on IRQ 1", async () => {
    const path = await buildGuest("keyboard", { format: "elf" });
    let serial = "";
    let onReady: (() => void) | undefined;
    const ready = new Promise<void>((r) => (onReady = r));
    const machine = new Machine({
      memoryMiB: 64,
      logger: new MemoryLogger(),
      kernel: { kind: "elf", path },
      serial: {
        output: (b) => {
          serial += Buffer.from(b).toString("latin1");
          if (serial.includes("keyboard ready\n")) onReady?.();
        },
      },
    });
    let device: VesaDevice | undefined;
    try {
      device = await vesa(machine, "vnc:0+web:0");
      const vnc = device.displays.find((d) => d.kind === "vnc") as VncDisplay;
      const web = device.displays.find((d) => d.kind === "web") as WebDisplay;
      const running = machine.run();
      await ready;
      const client = await RfbClient.connect(vnc.port);
      // "Hi" as a VNC viewer sends it: Shift, 'H' (upper case while shifted), Shift up, 'i'; then Return from the
      // web page (its keydown/keyup messages), once the VNC keys arrived.
      for (const [keysym, down] of [[0xffe1, true], [0x48, true], [0x48, false], [0xffe1, false], [0x69, true], [0x69, false]] as const) {
        client.key(keysym, down);
      }
      await expect.poll(() => serial.match(/^scancode 97$/m)).toBeTruthy();
      await webSend(web.port, "key 65293 1", "key 65293 0");
      const result = await running;
      client.close();
      expect(result).toMatchObject({ status: 0, reason: "debug-exit" });
      const codes = [...serial.matchAll(/^scancode ([0-9a-f]{2})$/gm)].map((m) => m[1]);
      expect(codes).toEqual(["2a", "23", "a3", "aa", "17", "97", "1c", "9c"]);
    } finally {
      await device?.shutdown();
      machine.close();
    }
  });

  it("a bzImage boot gets screen_info for the framebuffer at its BAR address in the boot mode", async () => {
    const machine = new Machine({ memoryMiB: 64, kernel: { kind: "bzimage", bytes: bzImage() }, decompress: "guest", serial: { output: () => {} }, logger: new MemoryLogger() });
    let device: VesaDevice | undefined;
    try {
      device = await vesa(machine, "");
      expect(machine.bootFramebuffer.provider).toBe("vesa0");
      machine.load();
      const bp = Layout.bootParams;
      expect(machine.memory.readU8(bp + 0x0f)).toBe(0x23);
      expect([machine.memory.readU16(bp + 0x12), machine.memory.readU16(bp + 0x14), machine.memory.readU16(bp + 0x16)]).toEqual([1024, 768, 32]);
      expect(machine.memory.readU32(bp + 0x18)).toBe(device.framebufferAddress);
      expect(machine.memory.readU32(bp + 0x1c)).toBe(device.fbSize / 0x10000);
      expect(machine.memory.readU16(bp + 0x24)).toBe(4096);
      expect(machine.memory.readU32(bp + 0x202)).toBe(0x53726448); // the setup header is intact
    } finally {
      await device?.shutdown();
      machine.close();
    }
  });
});
