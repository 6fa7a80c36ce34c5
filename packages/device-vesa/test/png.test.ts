import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { crc32, encodePng, PngDisplay } from "../src/displays/png.js";
import { VesaScreen } from "../src/screen.js";
import { VbeEnable, VbeIndex } from "../src/vbe/registers.js";
import { expectedFrame, firstDifference } from "./support/pattern.js";
import { decodePng } from "@vmm/test-support";

describe("PNG encoder", () => {
  it("computes the standard CRC-32", () => {
    expect(crc32(Buffer.from("123456789"))).toBe(0xcbf43926);
    expect(crc32(Buffer.from("IEND"))).toBe(0xae426082);
  });

  it("round-trips a picture through a strict decoder (signature, chunk CRCs, zlib)", () => {
    const frame = expectedFrame(97, 41);
    const png = encodePng(frame);
    expect(png.subarray(12, 16).toString()).toBe("IHDR");
    expect(png.subarray(-8, -4).toString()).toBe("IEND");
    expect(firstDifference(decodePng(png), frame)).toBeUndefined();
  });

  it("a png display writes the screen on screenshot() and on stop", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vesa-png-"));
    const screen = new VesaScreen(new Uint8Array(1 << 20));
    const display = new PngDisplay(screen, join(dir, "shot.png"));
    await display.start();
    display.screenshot();
    expect(decodePng(readFileSync(join(dir, "shot.png")))).toMatchObject({ width: 640, height: 480 });
    screen.vbe.write(VbeIndex.XRES, 16);
    screen.vbe.write(VbeIndex.YRES, 8);
    screen.vbe.write(VbeIndex.ENABLE, VbeEnable.ENABLED);
    screen.fb.set([0x30, 0x20, 0x10, 0], 4 * 17); // pixel (1,1) of a 16-wide 32 bpp mode
    await display.stop();
    const shot = decodePng(readFileSync(join(dir, "shot.png")));
    expect([shot.width, shot.height]).toEqual([16, 8]);
    expect([...shot.rgba.subarray(4 * 17, 4 * 17 + 4)]).toEqual([0x10, 0x20, 0x30, 255]);
  });
});
