import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, chromium } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";
export const haveChromium = existsSync(CHROMIUM);

export function warnNoChromium(): void {
  if (!haveChromium) {
    console.warn("\n" + "=".repeat(78) + "\nSKIPPING the browser display tests: /usr/bin/chromium is missing (apt-get install -y chromium)\n" + "=".repeat(78));
  }
}

/** Headless Debian Chromium with a fresh profile (user data dir), no network side traffic, sRGB output. */
export function launchChromium(): Promise<BrowserContext> {
  return chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), "vesa-chromium-")), {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--force-color-profile=srgb",
    ],
    viewport: { width: 800, height: 600 },
    deviceScaleFactor: 1,
  });
}
