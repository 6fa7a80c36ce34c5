import { mkdirSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebDisplay } from "../src/displays/web/server.js";
import { acceptKey } from "../src/displays/web/websocket.js";
import { expectedFrame, firstDifference } from "./support/pattern.js";
import { drawPattern, screenWithPattern, setMode } from "./support/screen.js";
import { haveChromium, launchChromium, warnNoChromium } from "./support/browser.js";
import { decodePng } from "@vmm/test-support";

warnNoChromium();

describe("WebSocket framing", () => {
  it("computes the RFC 6455 accept key", () => {
    expect(acceptKey("dGhlIHNhbXBsZSBub25jZQ==")).toBe("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  });

  it("closes a page connection that sends an unmasked frame; the server stays up", async () => {
    const display = new WebDisplay(screenWithPattern(16, 16), { port: 0 });
    await display.start();
    try {
      let upgraded = false;
      const closed = await new Promise<boolean>((resolve) => {
        const s = connect(display.port, "127.0.0.1");
        s.on("data", (d) => {
          if (d.toString("latin1").startsWith("HTTP/1.1 101")) {
            upgraded = true;
            s.write(Buffer.from([0x81, 0x05, ...Buffer.from("ready")])); // not masked
          }
        });
        s.on("error", () => {});
        s.on("close", () => resolve(true));
        setTimeout(() => resolve(false), 3000);
        s.write(`GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${display.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
      });
      expect(upgraded).toBe(true);
      expect(closed).toBe(true);
      expect(display.clientCount).toBe(0);
      const res = await fetch(`http://127.0.0.1:${display.port}/`);
      expect(await res.text()).toContain("<canvas");
    } finally {
      await display.stop();
    }
  });
});

describe("web display access control", () => {
  it("refuses other origins and other Host names (cross-site pages, DNS rebinding)", async () => {
    const display = new WebDisplay(screenWithPattern(16, 16), { port: 0 });
    await display.start();
    try {
      const ask = (headers: string) =>
        new Promise<string>((resolve) => {
          const s = connect(display.port, "127.0.0.1");
          let got = "";
          s.on("data", (d) => (got += d.toString("latin1")));
          s.on("error", () => {});
          s.on("close", () => resolve(got));
          setTimeout(() => (s.destroy(), resolve(got)), 2000);
          s.write(`GET /ws HTTP/1.1\r\n${headers}Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
        });
      expect(await ask(`Host: 127.0.0.1:${display.port}\r\nOrigin: http://evil.example\r\n`)).toMatch(/^HTTP\/1.1 403/);
      expect(await ask(`Host: evil.example:${display.port}\r\n`)).toMatch(/^HTTP\/1.1 403/);
      expect(await ask(`Host: localhost:${display.port}\r\nOrigin: http://localhost:${display.port}\r\n`)).toMatch(/^HTTP\/1.1 101/);
      const page = await fetch(`http://127.0.0.1:${display.port}/`);
      expect(page.status).toBe(200);
    } finally {
      await display.stop();
    }
  });
});

describe.skipIf(!haveChromium)("web display in headless Chromium", () => {
  let browser: BrowserContext;
  beforeAll(async () => {
    browser = await launchChromium();
  }, 60_000);
  afterAll(() => browser?.close());

  async function canvasPicture(page: Page) {
    return decodePng(await page.locator("#screen").screenshot());
  }

  async function waitForUpdates(page: Page, atLeast: number) {
    await expect.poll(async () => Number(await page.locator("#screen").getAttribute("data-updates")), { timeout: 10_000 }).toBeGreaterThanOrEqual(atLeast);
  }

  it("shows the framebuffer in the canvas, follows changes and mode switches, forwards keys", async () => {
    const screen = screenWithPattern(320, 192);
    const keys: [number, boolean][] = [];
    screen.onKey = (k, d) => keys.push([k, d]);
    const display = new WebDisplay(screen, { port: 0, pollMs: 10 });
    await display.start();
    const page = await browser.newPage();
    try {
      await page.goto(`http://127.0.0.1:${display.port}/`);
      await waitForUpdates(page, 1);
      const first = await canvasPicture(page);
      expect(firstDifference(first, expectedFrame(320, 192))).toBeUndefined();
      const artifacts = join(import.meta.dirname, "../../../artifacts");
      mkdirSync(artifacts, { recursive: true });
      writeFileSync(join(artifacts, "device-vesa-web-canvas.png"), await page.screenshot());

      // A change in one corner arrives as an incremental update.
      screen.fb.fill(0xff, (100 * 320 + 300) * 4, (100 * 320 + 310) * 4);
      await waitForUpdates(page, 2);
      const second = await canvasPicture(page);
      const i = (100 * 320 + 305) * 4;
      expect([...second.rgba.subarray(i, i + 4)]).toEqual([255, 255, 255, 255]);

      // A new mode resizes the canvas.
      const updates = Number(await page.locator("#screen").getAttribute("data-updates"));
      setMode(screen, 128, 64); // the mode switch and the drawing happen in one tick: one update carries both
      drawPattern(screen.fb, 128, 64);
      await expect.poll(() => page.locator("#screen").getAttribute("width"), { timeout: 10_000 }).toBe("128");
      await waitForUpdates(page, updates + 1);
      expect(firstDifference(await canvasPicture(page), expectedFrame(128, 64))).toBeUndefined();

      await page.locator("#screen").focus();
      await page.keyboard.press("a");
      await page.keyboard.press("Enter");
      await expect.poll(() => keys).toEqual([[0x61, true], [0x61, false], [0xff0d, true], [0xff0d, false]]);
    } finally {
      await page.close();
      await display.stop();
    }
  });
});
