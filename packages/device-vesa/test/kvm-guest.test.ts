import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { promisify } from "node:util";
import { MemoryLogger, Tokens, validateOptions, type DeviceType } from "@vmm/core";
import { kvmAvailability } from "@vmm/kvm-native";
import { Machine } from "@vmm/machine";
import { decodePng, kvmTestGate } from "@vmm/test-support";
import jpeg from "jpeg-js";
import { afterAll, describe, expect, it } from "vitest";
import type { VesaDevice } from "../src/device.js";
import { RfbClient } from "../src/displays/vnc/client.js";
import { Encoding } from "../src/displays/vnc/encodings.js";
import type { VncDisplay } from "../src/displays/vnc/server.js";
import type { WebDisplay } from "../src/displays/web/server.js";
import plugin from "../src/plugin.js";
import { haveChromium, launchChromium, warnNoChromium } from "./support/browser.js";
import { buildPackageGuest } from "./support/build-guest.js";
import { expectedFrame, firstDifference, patternColour } from "./support/pattern.js";

const kvm = kvmTestGate("@vmm/device-vesa", { what: "KVM guest test", check: kvmAvailability });
const VNCSNAPSHOT = "/usr/bin/vncsnapshot";

const haveVncsnapshot = existsSync(VNCSNAPSHOT);
// The external clients are separate tests, so that a missing one shows as skipped instead of passing unseen.
if (kvm.ok && !haveVncsnapshot) {
  console.warn("\n" + "=".repeat(78) + `\nSKIPPING the KVM guest's vncsnapshot capture: ${VNCSNAPSHOT} is missing (apt-get install -y vncsnapshot)\n` + "=".repeat(78));
}
if (kvm.ok) warnNoChromium();

describe.skipIf(!kvm.ok)("a guest under KVM drives the VESA device", () => {
  /** What the first test leaves running for the external clients: the device's displays and the final frame. */
  let shown: { vnc: VncDisplay; web: WebDisplay; final: ReturnType<typeof expectedFrame> } | undefined;
  let cleanup: (() => Promise<void>) | undefined;
  const dir = mkdtempSync(join(tmpdir(), "vesa-kvm-"));
  afterAll(async () => {
    await cleanup?.();
  });
  const needShown = () => {
    if (!shown) throw new Error("the guest test did not get as far as drawing the final frame");
    return shown;
  };

  it("sets a mode and draws; the PNG screenshot and VNC (incl. a dirty-logged update) show it", async () => {
    const image = await buildPackageGuest("vesa-draw");
    const logger = new MemoryLogger();
    const input = new PassThrough();
    let serial = "";
    let onDrawn: (() => void) | undefined;
    const drawn = new Promise<void>((r) => (onDrawn = r));
    const machine = new Machine({
      memoryMiB: 64,
      logger,
      kernel: { kind: "raw", path: image },
      serial: {
        input,
        output: (b) => {
          serial += Buffer.from(b).toString("latin1");
          if (serial.includes("vesa: drawn\n")) onDrawn?.();
        },
      },
    });
    let device: VesaDevice | undefined;
    cleanup = async () => {
      await device?.shutdown();
      machine.close();
    };
    plugin.register(machine.container, {});
    const type = machine.container.resolveAll<DeviceType>(Tokens.DeviceType).find((t) => t.type === "vesa")!;
    const options = validateOptions(type.options, { display: `png:${join(dir, "screen.png")}+vnc:0+web:0` }, { plugin: plugin.name });
    device = (await type.create({ container: machine.container, name: "vesa0" }, options)) as VesaDevice;
    machine.addPciDevice(device);
    const vnc = device.displays.find((d) => d.kind === "vnc") as VncDisplay;
    const web = device.displays.find((d) => d.kind === "web") as WebDisplay;
    const expected = expectedFrame(320, 192);

    const running = machine.run();
    await drawn;
    // While the guest waits on COM1: a VNC client takes the picture, then an incremental update must carry
    // exactly the block the guest draws next, found through KVM's dirty log.
    const client = await RfbClient.connect(vnc.port);
    client.setEncodings([Encoding.Zlib, Encoding.DesktopSize]);
    client.requestUpdate(false);
    await client.readUpdate();
    expect(firstDifference(client.frame, expected)).toBeUndefined();
    expect(device.screen.dirty.tracking).toBe(true);
    client.requestUpdate(true);
    const incremental = client.readUpdate();
    input.write("go");
    const rects = await incremental;
    expect(rects).toEqual([expect.objectContaining({ x: 256, y: 128, width: 64, height: 64, encoding: Encoding.Zlib })]);
    client.close();
    const result = await running;
    expect(result).toMatchObject({ status: 0, reason: "debug-exit" });

    expect(serial).toMatch(/vesa: slot \d+ class 030000 bar0 c[0-9a-f]{6}8 id b0c5 mem 256 x64K\n/);
    expect(serial).toContain("vesa: mode 320x192x32 enable 41\n");
    expect(serial).toContain("vesa: virt width 2560\n");
    expect(serial).toContain("vesa: after refused mode 2560x1600 enable 41\n");
    expect(serial).toContain("vesa: changed\n");

    const final = expectedFrame(320, 192, (x, y) => (x >= 300 && x < 310 && y >= 160 && y < 170 ? [255, 255, 255] : patternColour(x, y)));
    device.screenshot();
    expect(firstDifference(decodePng(readFileSync(join(dir, "screen.png"))), final)).toBeUndefined();
    shown = { vnc, web, final };
  }, 120_000);

  it.skipIf(!haveVncsnapshot)("an external VNC client (vncsnapshot) shows the same final frame", async () => {
    const { vnc, final } = needShown();
    const out = join(dir, "vnc.jpg");
    await promisify(execFile)(VNCSNAPSHOT, ["-quiet", "-allowblank", "-quality", "100", "-encodings", "zlib", `127.0.0.1::${vnc.port}`, out], { timeout: 15_000 });
    const pic = jpeg.decode(readFileSync(out), { useTArray: true, colorTransform: false });
    expect(firstDifference({ width: pic.width, height: pic.height, rgba: pic.data }, final, 1)).toBeUndefined();
  }, 30_000);

  it.skipIf(!haveChromium)("the web display in Chromium shows the same final frame", async () => {
    const { web, final } = needShown();
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${web.port}/`);
      await expect.poll(async () => Number(await page.locator("#screen").getAttribute("data-updates")), { timeout: 10_000 }).toBeGreaterThanOrEqual(1);
      expect(firstDifference(decodePng(await page.locator("#screen").screenshot()), final)).toBeUndefined();
      const artifacts = join(import.meta.dirname, "../../../artifacts");
      mkdirSync(artifacts, { recursive: true });
      writeFileSync(join(artifacts, "device-vesa-kvm-guest-browser.png"), await page.screenshot());
    } finally {
      await browser.close();
    }
  }, 60_000);
});
