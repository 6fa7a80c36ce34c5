import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import jpeg from "jpeg-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PngDisplay } from "../src/displays/png.js";
import { RfbClient } from "../src/displays/vnc/client.js";
import { Encoding } from "../src/displays/vnc/encodings.js";
import { VncDisplay } from "../src/displays/vnc/server.js";
import { WebDisplay } from "../src/displays/web/server.js";
import { screenshotFromVnc } from "../src/screenshot.js";
import { VbeIndex } from "../src/vbe/registers.js";
import { haveChromium, launchChromium, warnNoChromium } from "./support/browser.js";
import { machine } from "./support/guest.js";
import { expectedFrame, firstDifference } from "./support/pattern.js";
import { decodePng } from "@vmm/test-support";

const VNCSNAPSHOT = "/usr/bin/vncsnapshot";
const WIDTH = 400;
const HEIGHT = 224;
warnNoChromium();
if (!existsSync(VNCSNAPSHOT)) console.warn("\n" + "=".repeat(78) + "\nSKIPPING the vncsnapshot capture: /usr/bin/vncsnapshot is missing (apt-get install -y vncsnapshot)\n" + "=".repeat(78));

/**
 * The device driven only as a guest drives it (config cycles on 0xCF8/0xCFC, VBE ports 0x1CE/0x1CF, stores to
 * the BAR through the MMIO space), then every display must show exactly the pattern the guest drew.
 */
describe("a guest sets a mode and draws; every display shows it pixel for pixel", () => {
  const { guest, device } = machine();
  const dir = mkdtempSync(join(tmpdir(), "vesa-guest-"));
  const png = new PngDisplay(device.screen, join(dir, "screen.png"));
  const vnc = new VncDisplay(device.screen, { port: 0, name: "vesa0" });
  const web = new WebDisplay(device.screen, { port: 0 });
  const expected = expectedFrame(WIDTH, HEIGHT);

  beforeAll(async () => {
    for (const d of [png, vnc, web]) await device.addDisplay(d);
    const { address } = guest.sizeBar0();
    guest.setMode(WIDTH, HEIGHT, 32);
    expect([guest.vbeRead(VbeIndex.XRES), guest.vbeRead(VbeIndex.YRES), guest.vbeRead(VbeIndex.BPP)]).toEqual([WIDTH, HEIGHT, 32]);
    guest.drawPattern(address, WIDTH, HEIGHT);
  });
  afterAll(() => device.shutdown());

  it("png: screenshot() writes the picture", () => {
    device.screenshot();
    expect(firstDifference(decodePng(readFileSync(join(dir, "screen.png"))), expected)).toBeUndefined();
  });

  it("vnc: our RFB client (Zlib) and the vmm screenshot helper see it exactly", async () => {
    const client = await RfbClient.connect(vnc.port);
    try {
      client.setEncodings([Encoding.Zlib]);
      client.requestUpdate(false);
      await client.readUpdate();
      expect(firstDifference(client.frame, expected)).toBeUndefined();
    } finally {
      client.close();
    }
    const path = join(dir, "vnc-screenshot.png");
    expect(await screenshotFromVnc({ port: vnc.port, path })).toEqual({ width: WIDTH, height: HEIGHT });
    expect(firstDifference(decodePng(readFileSync(path)), expected)).toBeUndefined();
  });

  it.skipIf(!existsSync(VNCSNAPSHOT))("vnc: vncsnapshot captures it (RGB JPEG at quality 100, within 1 level)", async () => {
    const out = join(dir, "vncsnapshot.jpg");
    await promisify(execFile)(VNCSNAPSHOT, ["-quiet", "-allowblank", "-quality", "100", "-encodings", "zlib raw", `127.0.0.1::${vnc.port}`, out], { timeout: 15_000 });
    const picture = jpeg.decode(readFileSync(out), { useTArray: true, colorTransform: false });
    expect(firstDifference({ width: picture.width, height: picture.height, rgba: picture.data }, expected, 1)).toBeUndefined();
  });

  it.skipIf(!haveChromium)("web: the canvas in headless Chromium shows it exactly", async () => {
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${web.port}/`);
      await expect.poll(async () => Number(await page.locator("#screen").getAttribute("data-updates")), { timeout: 10_000 }).toBeGreaterThanOrEqual(1);
      const canvas = await page.locator("#screen").screenshot();
      expect(firstDifference(decodePng(canvas), expected)).toBeUndefined();
      const artifacts = join(import.meta.dirname, "../../../artifacts");
      mkdirSync(artifacts, { recursive: true });
      writeFileSync(join(artifacts, "device-vesa-guest-browser.png"), await page.screenshot());
    } finally {
      await browser.close();
    }
  }, 60_000);

  it("png: shutdown (the VM stopping) writes the last picture", async () => {
    guest.vbeWrite(VbeIndex.ENABLE, 0);
    await device.shutdown();
    expect(decodePng(readFileSync(join(dir, "screen.png")))).toMatchObject({ width: 640, height: 480 });
  });
});
