import { describe, expect, it } from "vitest";
import { RfbClient } from "../src/displays/vnc/client.js";
import { VncDisplay } from "../src/displays/vnc/server.js";
import { VesaScreen } from "../src/screen.js";
import { DAC_PORT_BASE } from "../src/vbe/dac.js";
import { VbeEnable, VbeIndex } from "../src/vbe/registers.js";
import { machine } from "./support/guest.js";
import { setMode } from "./support/screen.js";

const PEL_MASK = DAC_PORT_BASE, READ_INDEX = DAC_PORT_BASE + 1, WRITE_INDEX = DAC_PORT_BASE + 2, DATA = DAC_PORT_BASE + 3;

describe("8 bpp through the VGA DAC palette", () => {
  it("takes 6-bit entries (8-bit with the VBE 8BIT_DAC bit), auto-increments and reads back", () => {
    const screen = new VesaScreen(new Uint8Array(1 << 20));
    const dac = screen.dac.portHandler();
    dac.write(2, 1, 5);
    for (const v of [63, 32, 0, 1, 2, 3]) dac.write(3, 1, v); // entries 5 and 6
    expect(screen.palette.words[5]).toBe(0xff0082ff); // R=255 G=130 B=0
    expect(dac.read(2, 1)).toBe(7);
    dac.write(1, 1, 5);
    expect([dac.read(3, 1), dac.read(3, 1), dac.read(3, 1), dac.read(3, 1)]).toEqual([63, 32, 0, 1]);
    screen.vbe.write(VbeIndex.ENABLE, VbeEnable.DAC_8BIT);
    dac.write(2, 1, 9);
    for (const v of [0x12, 0x34, 0x56]) dac.write(3, 1, v);
    expect(screen.palette.words[9]).toBe(0xff563412);
    dac.write(1, 1, 9);
    expect(dac.read(3, 1)).toBe(0x12);
  });

  it("a guest sets an 8 bpp mode and a palette through the ports; displays repaint on palette changes", async () => {
    const { guest, device } = machine(1 << 20);
    const { pio, mmio } = guest;
    guest.setMode(64, 32, 8);
    expect(device.screen.scanout).toMatchObject({ bpp: 8, stride: 64 });
    pio.write(WRITE_INDEX, 1, 1);
    for (const v of [63, 0, 0, 0, 63, 0]) pio.write(DATA, 1, v); // 1 = red, 2 = green
    const lfb = guest.sizeBar0().address;
    for (let x = 0; x < 64; x++) mmio.write(lfb + 5 * 64 + x, 1, x < 32 ? 1 : 2);
    const px = (f: { rgba: Uint8Array; width: number }, x: number, y: number) => [...f.rgba.subarray((y * f.width + x) * 4, (y * f.width + x) * 4 + 3)];
    const frame = device.screen.capture();
    expect([px(frame, 0, 5), px(frame, 40, 5), px(frame, 0, 0)]).toEqual([[255, 0, 0], [0, 255, 0], [0, 0, 0]]);

    const vnc = new VncDisplay(device.screen, { port: 0, pollMs: 10 });
    await vnc.start();
    const c = await RfbClient.connect(vnc.port);
    try {
      c.requestUpdate(false);
      await c.readUpdate();
      expect(px(c.frame, 0, 5)).toEqual([255, 0, 0]);
      c.requestUpdate(true);
      const next = c.readUpdate();
      pio.write(WRITE_INDEX, 1, 1);
      for (const v of [0, 0, 63]) pio.write(DATA, 1, v); // entry 1 becomes blue: no framebuffer byte changes
      await next;
      expect(px(c.frame, 0, 5)).toEqual([0, 0, 255]);
      pio.write(PEL_MASK, 1, 0xfe); // index 1 masks to 0 (black)
      expect(px(device.screen.capture(), 0, 5)).toEqual([0, 0, 0]);
      expect(pio.read(READ_INDEX, 1)).toBe(0);
    } finally {
      c.close();
      await vnc.stop();
    }
  });

  it("screen_info refuses palette modes", () => {
    const { guest, device } = machine(1 << 20);
    guest.setMode(64, 32, 8);
    expect(() => device.screenInfo()).toThrow(/8 bpp palette/);
    const screen = new VesaScreen(new Uint8Array(1 << 20));
    setMode(screen, 8, 8, 8);
    expect(screen.scanout?.bpp).toBe(8);
  });
});
