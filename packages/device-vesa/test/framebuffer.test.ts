import { describe, expect, it } from "vitest";
import { captureFrame, packPixel, pixelLayout } from "../src/framebuffer.js";
import { screenInfo, encodeScreenInfo, VIDEO_TYPE_VLFB } from "../src/screen-info.js";

function writePixel(fb: Uint8Array, at: number, bytes: number, value: number) {
  for (let i = 0; i < bytes; i++) fb[at + i] = (value >>> (8 * i)) & 0xff;
}

describe("pixel conversion to RGBA", () => {
  for (const [bpp, expected] of [
    [32, [0x12, 0x34, 0x56]],
    [24, [0x12, 0x34, 0x56]],
    [16, [0x10, 0x34, 0x52]], // 5-6-5: low bits refilled from the high bits
    [15, [0x10, 0x31, 0x52]],
  ] as const) {
    it(`${bpp} bpp: little-endian packed pixels, stride and offset honoured`, () => {
      const layout = pixelLayout(bpp);
      const fb = new Uint8Array(4096);
      const stride = 64;
      const offset = 128 + 2 * layout.bytes;
      writePixel(fb, offset + stride * 1 + layout.bytes * 2, layout.bytes, packPixel(layout, 0x12, 0x34, 0x56));
      writePixel(fb, offset, layout.bytes, packPixel(layout, 255, 255, 255));
      const frame = captureFrame(fb, { width: 4, height: 3, bpp, stride, offset });
      expect([...frame.rgba.subarray((1 * 4 + 2) * 4, (1 * 4 + 2) * 4 + 4)]).toEqual([...expected, 255]);
      expect([...frame.rgba.subarray(0, 4)]).toEqual([255, 255, 255, 255]);
      expect([...frame.rgba.subarray(4, 8)]).toEqual([0, 0, 0, 255]);
    });
  }

  it("shows black NO_SIGNAL when no mode is enabled", () => {
    const frame = captureFrame(new Uint8Array(16), undefined);
    expect([frame.width, frame.height]).toEqual([640, 480]);
    expect(frame.rgba.every((v, i) => v === (i % 4 === 3 ? 255 : 0))).toBe(true);
  });
});

describe("screen_info", () => {
  it("describes a 32 bpp mode for vesafb/simplefb", () => {
    const info = screenInfo(0xfd000000, 16 << 20, { width: 1024, height: 768, bpp: 32, stride: 4096, offset: 0 });
    expect(info).toMatchObject({
      orig_video_isVGA: VIDEO_TYPE_VLFB,
      lfb_width: 1024,
      lfb_height: 768,
      lfb_depth: 32,
      lfb_base: 0xfd000000,
      ext_lfb_base: 0,
      lfb_size: 256,
      lfb_linelength: 4096,
      red_size: 8,
      red_pos: 16,
      green_size: 8,
      green_pos: 8,
      blue_size: 8,
      blue_pos: 0,
      rsvd_size: 8,
      rsvd_pos: 24,
    });
    const bytes = encodeScreenInfo(info);
    const view = new DataView(bytes.buffer);
    expect(bytes.length).toBe(0x40);
    expect(view.getUint8(0x0f)).toBe(0x23);
    expect(view.getUint16(0x12, true)).toBe(1024);
    expect(view.getUint32(0x18, true)).toBe(0xfd000000);
    expect(view.getUint16(0x24, true)).toBe(4096);
    expect([...bytes.subarray(0x26, 0x2e)]).toEqual([8, 16, 8, 8, 8, 0, 8, 24]);
  });

  it("splits a base above 4 GiB and describes 16 bpp", () => {
    const info = screenInfo(0x8_0000_0000, 1 << 20, { width: 640, height: 480, bpp: 16, stride: 1280, offset: 0 });
    expect(info).toMatchObject({ lfb_base: 0, ext_lfb_base: 8, capabilities: 2, red_pos: 11, green_size: 6, rsvd_size: 0 });
    expect(() => screenInfo(0x1001, 1 << 20, { width: 1, height: 1, bpp: 32, stride: 4, offset: 0 })).toThrow(/aligned/);
  });
});
