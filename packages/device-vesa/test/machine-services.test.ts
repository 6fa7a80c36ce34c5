import { MemoryLogger, MmioBackedMemoryMapper, Tokens, createMmioSpace, createPortIoSpace, validateOptions, type DeviceType, SignalMsiVectors } from "@vmm/core";
import { BootFramebufferSlot } from "@vmm/machine";
import { PciBus } from "@vmm/pci";
import { container as rootContainer } from "tsyringe";
import { describe, expect, it } from "vitest";
import type { VesaDevice } from "../src/device.js";
import { RfbClient } from "../src/displays/vnc/client.js";
import type { VncDisplay } from "../src/displays/vnc/server.js";
import type { WebDisplay } from "../src/displays/web/server.js";
import plugin from "../src/plugin.js";
import { VIDEO_CAPABILITY_64BIT_BASE, encodeScreenInfo, screenInfo } from "../src/screen-info.js";
import { VbeIndex } from "../src/vbe/registers.js";
import { webSend } from "./support/web-keys.js";

const MiB = 1024 * 1024;

/** A VM's container without KVM: the core services the plugin needs, and optionally the machine's keyboard and boot framebuffer hook. */
function vm(services: { keyboard?: boolean; boot?: boolean } = {}) {
  const c = rootContainer.createChildContainer();
  const pio = createPortIoSpace();
  const mmio = createMmioSpace();
  c.register(Tokens.MemoryMapper, { useValue: new MmioBackedMemoryMapper(mmio) });
  c.register(Tokens.PortIo, { useValue: pio });
  c.register(Tokens.Logger, { useValue: new MemoryLogger() });
  const keys: [number, boolean][] = [];
  if (services.keyboard) c.register(Tokens.Keyboard, { useValue: { press: (k: number, d: boolean) => (keys.push([k, d]), true) } });
  const boot = new BootFramebufferSlot();
  if (services.boot) c.register(Tokens.BootFramebuffer, { useValue: boot });
  plugin.register(c, {});
  const type = c.resolveAll<DeviceType>(Tokens.DeviceType).find((t) => t.type === "vesa")!;
  const create = async (name: string, raw: Record<string, unknown>) =>
    (await type.create({ container: c, name }, validateOptions(type.options, raw, { plugin: plugin.name, device: "vesa" }))) as VesaDevice;
  const bus = new PciBus({
    pio,
    mmio,
    msiVectors: new SignalMsiVectors({ signal() {} }),
    irq: () => ({ level: false, set() {} }),
    windows: { io: { base: 0x6200, size: 0x9e00 }, mem32: { base: 0xc0000000, size: 0x20000000 } },
  });
  return { create, keys, boot, bus };
}

describe("the machine's services, found in the container", () => {
  it("sends VNC KeyEvents and the web page's keys to the machine's keyboard", async () => {
    const { create, keys } = vm({ keyboard: true });
    const device = await create("vesa0", { display: "vnc:0+web:0" });
    try {
      const vnc = device.displays.find((d) => d.kind === "vnc") as VncDisplay;
      const web = device.displays.find((d) => d.kind === "web") as WebDisplay;
      const client = await RfbClient.connect(vnc.port);
      client.key(0xffe1, true);
      client.key(0x48, true);
      await expect.poll(() => keys.length).toBe(2);
      client.close();
      await webSend(web.port, "key 65293 1");
      await expect.poll(() => keys.length).toBe(3);
      expect(keys).toEqual([[0xffe1, true], [0x48, true], [0xff0d, true]]);
    } finally {
      await device.shutdown();
    }
  });

  it("without a machine keyboard, keys are dropped", async () => {
    const { create } = vm();
    const device = await create("vesa0", {});
    expect(device.screen.onKey).toBeUndefined();
    expect(() => device.screen.key(0x61, true)).not.toThrow();
  });

  it("provides screen_info for a Linux boot: the boot mode at BAR 0's address, encoded as boot_params bytes", async () => {
    const { create, boot, bus } = vm({ boot: true });
    const device = await create("vesa0", { fbsize: "16M" });
    expect(boot.provider).toBe("vesa0");
    bus.attach(device);
    expect(device.screen.scanout).toBeUndefined(); // nothing is set until a boot asks
    const bytes = boot.screenInfo()!;
    const base = device.framebufferAddress!;
    expect(base).toBeGreaterThanOrEqual(0xc0000000);
    expect(device.screen.scanout).toMatchObject({ width: 1024, height: 768, bpp: 32, stride: 4096, offset: 0 });
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    expect(bytes.length).toBe(0x40);
    expect(bytes[0x0f]).toBe(0x23); // orig_video_isVGA = VIDEO_TYPE_VLFB
    expect([v.getUint16(0x12, true), v.getUint16(0x14, true), v.getUint16(0x16, true)]).toEqual([1024, 768, 32]);
    expect(v.getUint32(0x18, true)).toBe(base); // lfb_base
    expect(v.getUint32(0x1c, true)).toBe(256); // lfb_size: 16 MiB in 64 KiB units
    expect(v.getUint16(0x24, true)).toBe(4096); // lfb_linelength
    expect([...bytes.subarray(0x26, 0x2e)]).toEqual([8, 16, 8, 8, 8, 0, 8, 24]); // x8r8g8b8
    expect(v.getUint32(0x36, true)).toBe(0); // capabilities: base below 4 GiB
    expect(v.getUint32(0x3a, true)).toBe(0);
  });

  it("keeps a mode already set, refuses a second boot display, picks a smaller boot mode for a small framebuffer", async () => {
    const { create, boot, bus } = vm({ boot: true });
    const device = await create("vesa0", { fbsize: "1M" });
    await expect(create("vesa1", {})).rejects.toThrow(/vesa0 already provides the boot framebuffer/);
    bus.attach(device);
    const bytes = boot.screenInfo()!;
    expect(device.screen.scanout).toMatchObject({ width: 640, height: 480, bpp: 16 });
    expect([...bytes.subarray(0x26, 0x2e)]).toEqual([5, 11, 6, 5, 5, 0, 0, 0]); // r5g6b5
    device.screen.vbe.write(VbeIndex.ENABLE, 0);
    device.screen.vbe.write(VbeIndex.XRES, 320);
    device.screen.vbe.write(VbeIndex.YRES, 200);
    device.screen.vbe.write(VbeIndex.BPP, 24);
    device.screen.vbe.write(VbeIndex.ENABLE, 0x41);
    expect(new DataView(boot.screenInfo()!.buffer).getUint16(0x12, true)).toBe(320);
  });

  it("describes a framebuffer above 4 GiB with ext_lfb_base and VIDEO_CAPABILITY_64BIT_BASE", () => {
    const bytes = encodeScreenInfo(screenInfo(0x80_0000_0000 + 16 * MiB, 16 * MiB, { width: 800, height: 600, bpp: 32, stride: 3200, offset: 0 }));
    const v = new DataView(bytes.buffer);
    expect(v.getUint32(0x18, true)).toBe(16 * MiB);
    expect(v.getUint32(0x3a, true)).toBe(0x80);
    expect(v.getUint32(0x36, true)).toBe(VIDEO_CAPABILITY_64BIT_BASE);
  });
});
