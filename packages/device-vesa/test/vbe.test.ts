import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { VbeEnable, VbeIndex, VbeRegisterFile } from "../src/vbe/registers.js";
import type { Scanout } from "../src/vbe/mode.js";

const MiB = 1024 * 1024;

function file(fbSize = 16 * MiB) {
  const events: (Scanout | undefined)[] = [];
  const refused: string[] = [];
  let clears = 0;
  const vbe = new VbeRegisterFile({ fbSize, onModeChange: (s) => events.push(s), onRefused: (r) => refused.push(r), onClear: () => clears++ });
  const setMode = (x: number, y: number, bpp: number, flags: number = VbeEnable.LFB_ENABLED) => {
    vbe.write(VbeIndex.ENABLE, 0);
    vbe.write(VbeIndex.XRES, x);
    vbe.write(VbeIndex.YRES, y);
    vbe.write(VbeIndex.BPP, bpp);
    vbe.write(VbeIndex.ENABLE, VbeEnable.ENABLED | flags);
  };
  return { vbe, events, refused, setMode, clears: () => clears };
}

describe("VBE register file", () => {
  it("identifies itself and reports video memory in 64 KiB units", () => {
    const { vbe } = file(16 * MiB);
    expect(vbe.read(VbeIndex.ID)).toBe(0xb0c5);
    vbe.write(VbeIndex.ID, 0xb0c2);
    expect(vbe.read(VbeIndex.ID)).toBe(0xb0c2);
    vbe.write(VbeIndex.ID, 0x1234);
    expect(vbe.read(VbeIndex.ID)).toBe(0xb0c2);
    expect(vbe.read(VbeIndex.VIDEO_MEMORY_64K)).toBe(256);
    vbe.write(VbeIndex.VIDEO_MEMORY_64K, 5);
    expect(vbe.read(VbeIndex.VIDEO_MEMORY_64K)).toBe(256);
  });

  it("enables a mode: scanout, clear, mode-change event", () => {
    const { vbe, events, setMode, clears } = file();
    setMode(800, 600, 32);
    expect(vbe.scanout).toEqual({ width: 800, height: 600, bpp: 32, stride: 3200, offset: 0 });
    expect(events).toHaveLength(1);
    expect(clears()).toBe(1);
    expect(vbe.read(VbeIndex.ENABLE)).toBe(VbeEnable.ENABLED | VbeEnable.LFB_ENABLED);
    expect(vbe.read(VbeIndex.VIRT_WIDTH)).toBe(800);
    expect(vbe.read(VbeIndex.VIRT_HEIGHT)).toBe(Math.floor((16 * MiB) / 3200));
    vbe.write(VbeIndex.ENABLE, 0);
    expect(vbe.scanout).toBeUndefined();
    expect(events.at(-1)).toBeUndefined();
  });

  it("NOCLEARMEM keeps the framebuffer", () => {
    const { setMode, clears } = file();
    setMode(640, 480, 16, VbeEnable.LFB_ENABLED | VbeEnable.NOCLEARMEM);
    expect(clears()).toBe(0);
  });

  it("refuses out-of-range values and keeps reading back the previous ones", () => {
    const { vbe, refused } = file();
    vbe.write(VbeIndex.XRES, 1024);
    vbe.write(VbeIndex.XRES, 4000);
    expect(vbe.read(VbeIndex.XRES)).toBe(1024);
    vbe.write(VbeIndex.YRES, 0);
    expect(vbe.read(VbeIndex.YRES)).toBe(480);
    for (const bpp of [4, 1, 31, 33, 0]) vbe.write(VbeIndex.BPP, bpp);
    expect(vbe.read(VbeIndex.BPP)).toBe(32);
    expect(refused.join("\n")).toMatch(/XRES.*4000/);
    expect(refused.join("\n")).toMatch(/unsupported depth 4/);
  });

  it("refuses to enable a mode that does not fit and restores the previous mode's registers", () => {
    const { vbe, setMode, refused } = file(1 * MiB);
    setMode(512, 384, 32);
    const before = vbe.scanout;
    setMode(1024, 768, 32); // 3 MiB > 1 MiB
    expect(refused.at(-1)).toMatch(/needs .* bytes, the framebuffer has 1048576/);
    expect(vbe.read(VbeIndex.ENABLE) & VbeEnable.ENABLED).toBe(0);
    expect([vbe.read(VbeIndex.XRES), vbe.read(VbeIndex.YRES), vbe.read(VbeIndex.BPP)]).toEqual([512, 384, 32]);
    expect(vbe.scanout).toBeUndefined();
    vbe.write(VbeIndex.ENABLE, VbeEnable.ENABLED);
    expect(vbe.scanout).toEqual(before);
  });

  it("refuses live changes that would break the enabled mode", () => {
    const { vbe, setMode } = file(2 * MiB);
    setMode(640, 480, 32);
    vbe.write(VbeIndex.XRES, 1280); // 1280*480*4 > 2 MiB
    expect(vbe.read(VbeIndex.XRES)).toBe(640);
    expect(vbe.scanout?.width).toBe(640);
    vbe.write(VbeIndex.BPP, 16);
    expect(vbe.scanout).toMatchObject({ bpp: 16, stride: 1280 });
  });

  it("pans with VIRT_WIDTH and X/Y offsets within the framebuffer", () => {
    const { vbe, setMode } = file(4 * MiB);
    setMode(640, 480, 32);
    vbe.write(VbeIndex.VIRT_WIDTH, 1024);
    expect(vbe.scanout?.stride).toBe(4096);
    expect(vbe.read(VbeIndex.VIRT_HEIGHT)).toBe(1024);
    vbe.write(VbeIndex.Y_OFFSET, 100);
    vbe.write(VbeIndex.X_OFFSET, 8);
    expect(vbe.scanout).toMatchObject({ offset: 100 * 4096 + 8 * 4 });
    vbe.write(VbeIndex.Y_OFFSET, 600); // 600+480 lines > 1024
    expect(vbe.read(VbeIndex.Y_OFFSET)).toBe(100);
    vbe.write(VbeIndex.X_OFFSET, 500); // 500+640 > 1024
    expect(vbe.read(VbeIndex.X_OFFSET)).toBe(8);
    vbe.write(VbeIndex.VIRT_HEIGHT, 2000);
    expect(vbe.read(VbeIndex.VIRT_HEIGHT)).toBe(1024);
  });

  it("GETCAPS makes XRES/YRES/BPP read the maxima", () => {
    const { vbe } = file();
    vbe.write(VbeIndex.ENABLE, VbeEnable.GETCAPS);
    expect([vbe.read(VbeIndex.XRES), vbe.read(VbeIndex.YRES), vbe.read(VbeIndex.BPP)]).toEqual([2560, 1600, 32]);
    vbe.write(VbeIndex.ENABLE, 0);
    expect(vbe.read(VbeIndex.XRES)).toBe(640);
  });

  it("bank is bounded by the video memory", () => {
    const { vbe } = file(1 * MiB);
    vbe.write(VbeIndex.BANK, 15);
    expect(vbe.read(VbeIndex.BANK)).toBe(15);
    vbe.write(VbeIndex.BANK, 16);
    expect(vbe.read(VbeIndex.BANK)).toBe(15);
  });

  it("answers on the index and data ports with word and byte accesses", () => {
    const { vbe } = file();
    const port = vbe.portHandler();
    port.write(0, 2, 0x0001);
    port.write(1, 2, 1024);
    expect(port.read(0, 2)).toBe(1);
    expect(port.read(1, 2)).toBe(1024);
    port.write(0, 1, 0x0a);
    expect(port.read(1, 2)).toBe(256);
    expect(port.read(1, 1)).toBe(0);
    port.write(0, 2, 0x99);
    expect(port.read(1, 2)).toBe(0); // unknown index
  });

  it("reset returns to the power-on state", () => {
    const { vbe, setMode } = file();
    setMode(1024, 768, 24);
    vbe.reset();
    expect(vbe.scanout).toBeUndefined();
    expect(vbe.read(VbeIndex.XRES)).toBe(640);
  });

  it("whatever the guest writes, an enabled scanout stays inside the framebuffer", () => {
    const fbSize = 2 * MiB;
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 11 }), fc.integer({ min: 0, max: 0xffff })), { maxLength: 60 }), (writes) => {
        const { vbe } = file(fbSize);
        for (const [index, value] of writes) {
          vbe.write(index, value);
          const s = vbe.scanout;
          if (s) {
            const bytes = (s.bpp + 7) >> 3;
            expect(s.offset + (s.height - 1) * s.stride + s.width * bytes).toBeLessThanOrEqual(fbSize);
            expect(s.width * bytes).toBeLessThanOrEqual(s.stride);
          }
        }
      }),
    );
  });
});

describe("bit 31 from the guest", () => {
  it("VBE and DAC ports take any 32-bit value, including bit 31, and always read back unsigned of the access width", async () => {
    const { VgaDac } = await import("../src/vbe/dac.js");
    const { vbe } = file();
    const dac = new VgaDac(() => false, () => {});
    const handlers = [vbe.portHandler(), dac.portHandler()];
    fc.assert(
      fc.property(fc.constantFrom(0, 1), fc.constantFrom(0, 1, 2, 3), fc.constantFrom(1, 2, 4), fc.oneof(fc.constantFrom(0x80000000, 0xffffffff, 0x8000ffff), fc.nat({ max: 0xffffffff })), (h, offset, size, value) => {
        const handler = handlers[h]!;
        const at = h === 0 ? offset % 2 : offset;
        handler.write(at, size as 1 | 2 | 4, value);
        const r = handler.read(at, size as 1 | 2 | 4);
        return Number.isInteger(r) && r >= 0 && r < 2 ** (8 * size);
      }),
    );
    expect(vbe.index).toBeGreaterThanOrEqual(0);
    expect([...dac.words].every((w) => w >= 0)).toBe(true);
  });
});
