import { SnapshotError, type DeviceState } from "@vmm/core";
import { describe, expect, it } from "vitest";
import { VbeEnable, VbeIndex } from "../src/vbe/registers.js";
import { machine } from "./support/guest.js";

const MiB = 1 << 20;
const DAC_WRITE_INDEX = 0x3c8;
const DAC_DATA = 0x3c9;
const DAC_READ_INDEX = 0x3c7;

/** A guest that set an 8 bpp mode with a panned virtual screen, loaded palette entries and drew pixels. */
function drawn() {
  const m = machine(2 * MiB);
  const { guest, pio, mmio } = m;
  guest.vbeWrite(VbeIndex.ENABLE, 0);
  guest.vbeWrite(VbeIndex.XRES, 320);
  guest.vbeWrite(VbeIndex.YRES, 200);
  guest.vbeWrite(VbeIndex.BPP, 8);
  guest.vbeWrite(VbeIndex.ENABLE, VbeEnable.ENABLED | VbeEnable.LFB_ENABLED | VbeEnable.DAC_8BIT);
  guest.vbeWrite(VbeIndex.VIRT_WIDTH, 400);
  guest.vbeWrite(VbeIndex.Y_OFFSET, 3);
  pio.write(DAC_WRITE_INDEX, 1, 7);
  for (const c of [0x12, 0x34, 0x56, 0xfe, 0xdc, 0xba]) pio.write(DAC_DATA, 1, c); // entries 7 and 8
  pio.write(DAC_DATA, 1, 0x99); // one channel into entry 9: the write cycle stands at 1
  const lfb = guest.sizeBar0().address;
  for (let i = 0; i < 4000; i++) mmio.write(lfb + 1200 + i, 1, (i * 7) & 0xff);
  guest.vbeWrite(VbeIndex.BPP, 8); // leaves the index port at BPP
  return m;
}

/** What a guest can read back, and what the displays show. */
function observe(m: ReturnType<typeof machine>) {
  const { guest, pio } = m;
  const registers = [VbeIndex.XRES, VbeIndex.YRES, VbeIndex.BPP, VbeIndex.ENABLE, VbeIndex.VIRT_WIDTH, VbeIndex.Y_OFFSET].map((i) => guest.vbeRead(i));
  pio.write(DAC_READ_INDEX, 1, 7);
  const palette = Array.from({ length: 6 }, () => pio.read(DAC_DATA, 1));
  return { registers, palette, scanout: m.device.screen.scanout, picture: Buffer.from(m.device.screen.capture().rgba).toString("base64") };
}

describe("VESA device state (snapshots)", () => {
  it("saves VBE registers, the palette, the DAC cycle and the framebuffer; a fresh device restored from it shows the same picture", () => {
    const a = drawn();
    const saved = a.device.saveState();
    const json = JSON.parse(JSON.stringify(saved)) as DeviceState;
    const b = machine(2 * MiB);
    b.bus.restoreFunction(b.device, json);
    expect(b.device.framebufferAddress).toBe(a.device.framebufferAddress);
    expect(Buffer.from(b.device.screen.fb).equals(Buffer.from(a.device.screen.fb))).toBe(true);
    // The index port is restored: a data read without writing the index reads BPP.
    expect(b.pio.read(0x1cf, 2)).toBe(8);
    // The DAC write cycle too: two more channels complete entry 9 in the copy as in the original.
    for (const m of [a, b]) for (const c of [0x88, 0x77]) m.pio.write(DAC_DATA, 1, c);
    const seen = observe(a);
    expect(seen.registers).toEqual([320, 200, 8, VbeEnable.ENABLED | VbeEnable.LFB_ENABLED | VbeEnable.DAC_8BIT, 400, 3]);
    expect(seen.palette).toEqual([0x12, 0x34, 0x56, 0xfe, 0xdc, 0xba]);
    expect(observe(b)).toEqual(seen);
    b.pio.write(DAC_READ_INDEX, 1, 9);
    expect([0, 1, 2].map(() => b.pio.read(DAC_DATA, 1))).toEqual([0x99, 0x88, 0x77]);
  });

  it("keeps the framebuffer small in the snapshot (deflated) and restores a disabled display as disabled", () => {
    const m = machine(16 * MiB);
    const saved = m.device.saveState();
    expect(JSON.stringify(saved).length).toBeLessThan(200_000);
    const b = machine(16 * MiB);
    b.device.restoreState(saved);
    expect(b.device.screen.scanout).toBeUndefined();
  });

  it("refuses state of another framebuffer size, a mode that does not fit, bad palette data; nothing changes", () => {
    const a = drawn();
    const saved = a.device.saveState() as unknown as { version: number; data: Record<string, unknown> & { device: { version: number; data: Record<string, unknown> } } };
    const other = machine(4 * MiB);
    const before = observe(other);
    expect(() => other.device.restoreState(saved as unknown as DeviceState)).toThrow(SnapshotError);
    const device = saved.data.device;
    const withDevice = (data: Record<string, unknown>) => ({ ...saved, data: { ...saved.data, device: { ...device, data: { ...device.data, ...data } } } }) as unknown as DeviceState;
    const vbe = device.data.vbe as { registers: Record<string, number> };
    const b = machine(2 * MiB);
    const clean = observe(b);
    expect(() => b.device.restoreState(withDevice({ vbe: { ...vbe, registers: { ...vbe.registers, xres: 2560, yres: 1600, bpp: 32 } } }))).toThrow(/vesa0: the saved VBE mode does not fit the framebuffer/);
    expect(() => b.device.restoreState(withDevice({ vbe: { ...vbe, registers: { ...vbe.registers, bpp: 12 } } }))).toThrow(/unsupported depth 12 bpp/);
    expect(() => b.device.restoreState(withDevice({ dac: { ...(device.data.dac as object), entries: "AAAA" } }))).toThrow(/vesa0 DAC entries: 3 bytes, expected 768/);
    expect(() => b.device.restoreState(withDevice({ framebuffer: "bm90IGRlZmxhdGU=" }))).toThrow(/vesa0: the saved framebuffer does not inflate/);
    expect(observe(b).registers).toEqual(clean.registers);
    expect(observe(b).palette).toEqual(clean.palette);
    expect(observe(other).registers).toEqual(before.registers);
  });
});
