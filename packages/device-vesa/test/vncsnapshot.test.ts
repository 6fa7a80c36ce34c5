import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import jpeg from "jpeg-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VncDisplay } from "../src/displays/vnc/server.js";
import { expectedFrame, firstDifference } from "./support/pattern.js";
import { screenWithPattern } from "./support/screen.js";

const run = promisify(execFile);
const VNCSNAPSHOT = "/usr/bin/vncsnapshot";
const haveClient = existsSync(VNCSNAPSHOT);
if (!haveClient) {
  console.warn(
    "\n" + "=".repeat(78) + "\nSKIPPING the real-VNC-client tests: /usr/bin/vncsnapshot is missing (apt-get install -y vncsnapshot)\n" + "=".repeat(78),
  );
}

/**
 * vncsnapshot (TightVNC 1.2 based; speaks RFB 3.3) writes JPEG only. With -quality 100 it writes an RGB JPEG
 * (Adobe marker, no YCbCr transform, no chroma subsampling, all-ones quantisation), so it is lossless up to DCT
 * rounding: every pixel, 1-pixel features included, must match within 1 level per channel. jpeg-js must be told
 * not to apply a YCbCr transform (colorTransform: false) to read it correctly.
 */
const TOLERANCE = 1;

describe.skipIf(!haveClient)("VNC display with a real client (vncsnapshot)", () => {
  let display: VncDisplay;
  const screen = screenWithPattern(320, 192);
  const dir = mkdtempSync(join(tmpdir(), "vesa-vncsnapshot-"));
  beforeAll(async () => {
    display = new VncDisplay(screen, { port: 0 });
    await display.start();
  });
  afterAll(() => display.stop());

  for (const encoding of ["raw", "zlib"]) {
    it(`captures the screen with encoding ${encoding}`, async () => {
      const out = join(dir, `${encoding}.jpg`);
      const statsSeen: Record<string, number>[] = [];
      const watcher = setInterval(() => statsSeen.push(...[...display.connections].map((c) => ({ ...c.stats.rects }))), 5);
      try {
        await run(VNCSNAPSHOT, ["-quiet", "-allowblank", "-quality", "100", "-encodings", encoding, `127.0.0.1::${display.port}`, out], { timeout: 15_000 });
      } finally {
        clearInterval(watcher);
      }
      expect(statsSeen.some((s) => (s[encoding] ?? 0) > 0)).toBe(true);
      const picture = jpeg.decode(readFileSync(out), { useTArray: true, colorTransform: false });
      const got = { width: picture.width, height: picture.height, rgba: picture.data };
      expect(firstDifference(got, expectedFrame(320, 192), TOLERANCE)).toBeUndefined();
    });
  }
});
