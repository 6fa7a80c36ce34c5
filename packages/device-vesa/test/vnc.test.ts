import { connect } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { RfbClient } from "../src/displays/vnc/client.js";
import { Encoding } from "../src/displays/vnc/encodings.js";
import { VncDisplay } from "../src/displays/vnc/server.js";
import type { VesaScreen } from "../src/screen.js";
import { expectedFrame, firstDifference } from "./support/pattern.js";
import { screenWithPattern, setMode } from "./support/screen.js";

/** Feeds a screen's dirty-page log by hand: `pages` is what the next read reports, after which it starts empty. */
function fakeDirtyLog(screen: VesaScreen): { pages: Uint8Array } {
  const log = { pages: new Uint8Array(screen.dirty.bitmapBytes) };
  screen.dirty.setSource(() => {
    const out = log.pages;
    log.pages = new Uint8Array(out.length);
    return out;
  });
  return log;
}

const open: { stop(): Promise<void> }[] = [];
const clients: RfbClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const d of open.splice(0)) await d.stop();
});

async function serve(screen: VesaScreen, pollMs = 10) {
  const display = new VncDisplay(screen, { port: 0, name: "vesa-test", pollMs });
  await display.start();
  open.push(display);
  return display;
}

async function client(port: number, encodings: number[] = [Encoding.Raw]) {
  const c = await RfbClient.connect(port);
  clients.push(c);
  c.setEncodings(encodings);
  return c;
}

const settle = () => new Promise((r) => setTimeout(r, 60));

describe("VNC display", () => {
  it("serves the picture with Raw and with Zlib, pixel for pixel", async () => {
    const screen = screenWithPattern(200, 120);
    const display = await serve(screen);
    for (const enc of [Encoding.Raw, Encoding.Zlib]) {
      const c = await client(display.port, [enc, Encoding.Raw]);
      expect([c.width, c.height, c.name]).toEqual([200, 120, "vesa-test"]);
      c.requestUpdate(false);
      const rects = await c.readUpdate();
      expect(rects.every((r) => r.encoding === enc)).toBe(true);
      expect(firstDifference(c.frame, expectedFrame(200, 120))).toBeUndefined();
    }
    const conn = [...display.connections].at(-1)!;
    expect(conn.stats.rects.zlib).toBeGreaterThan(0);
  });

  it("zlib rectangles continue one stream across updates and compress", async () => {
    const screen = screenWithPattern(256, 128);
    const display = await serve(screen);
    const c = await client(display.port, [Encoding.Zlib]);
    c.requestUpdate(false);
    await c.readUpdate();
    screen.fb.fill(0x55, 0, 4 * 256 * 10);
    c.requestUpdate(true);
    const rects = await c.readUpdate();
    expect(rects[0]!.encoding).toBe(Encoding.Zlib);
    const expected = expectedFrame(256, 128);
    expected.rgba.fill(0x55, 0, 4 * 256 * 10);
    for (let i = 3; i < 4 * 256 * 10; i += 4) expected.rgba[i] = 255;
    expect(firstDifference(c.frame, expected)).toBeUndefined();
    // Each of the two rectangles inflated as a continuation of the stream (the client checks the sizes).
    const conn = [...display.connections][0]!;
    expect(conn.stats.rects.zlib).toBe(2);
  });

  it("incremental requests carry only the changed tiles, and wait while nothing changes", async () => {
    const screen = screenWithPattern(320, 200);
    const display = await serve(screen);
    const c = await client(display.port);
    c.requestUpdate(false);
    await c.readUpdate();
    c.requestUpdate(true);
    let answered = false;
    const next = c.readUpdate().then((r) => ((answered = true), r));
    await settle();
    expect(answered).toBe(false); // nothing changed: the request stays pending
    screen.fb.set([9, 8, 7, 0], (150 * 320 + 200) * 4); // one pixel at (200,150)
    const rects = await next;
    expect(rects).toHaveLength(1);
    expect(rects[0]).toMatchObject({ x: 192, y: 128, width: 64, height: 64 });
    expect([...c.frame.rgba.subarray((150 * 320 + 200) * 4, (150 * 320 + 200) * 4 + 3)]).toEqual([7, 8, 9]);
  });

  it("uses the dirty-page log to skip comparing untouched pages", async () => {
    const screen = screenWithPattern(320, 200);
    const log = fakeDirtyLog(screen);
    const display = await serve(screen);
    const c = await client(display.port);
    c.requestUpdate(false);
    await c.readUpdate();
    // A write the log does not report is not looked for ...
    screen.fb.set([1, 1, 1, 0], 0);
    c.requestUpdate(true);
    const next = c.readUpdate();
    await settle();
    expect(display.connections.values().next().value!.waiting).toBe(true);
    // ... one it reports is found and sent (with the earlier one, which shares the tile).
    const at = (100 * 320 + 10) * 4;
    screen.fb.set([2, 2, 2, 0], at);
    log.pages[at >> 15] |= 1 << ((at >> 12) & 7);
    log.pages[0] |= 1;
    const rects = await next;
    expect(rects.map((r) => [r.x, r.y])).toEqual([[0, 0], [0, 64]]);
  });

  it("answers a non-incremental request for an empty or off-screen rectangle with an empty update", async () => {
    const display = await serve(screenWithPattern(32, 16));
    const c = await client(display.port);
    c.requestUpdate(false, { x: 100, y: 100, width: 10, height: 10 });
    expect(await c.readUpdate()).toEqual([]);
    c.requestUpdate(false, { x: 0, y: 0, width: 0, height: 0 });
    expect(await c.readUpdate()).toEqual([]);
  });

  for (const logged of [false, true])
  it(`a partial incremental request leaves the rest pending for the next whole-screen request${logged ? " (dirty log)" : ""}`, async () => {
    const screen = screenWithPattern(256, 64);
    const log = logged ? fakeDirtyLog(screen) : { pages: new Uint8Array(screen.dirty.bitmapBytes) };
    const display = await serve(screen);
    const c = await client(display.port);
    c.requestUpdate(false);
    await c.readUpdate();
    screen.fb.set([1, 2, 3, 0], (10 * 256 + 10) * 4); // tile (0,0)
    screen.fb.set([1, 2, 3, 0], (10 * 256 + 200) * 4); // tile (192,0)
    log.pages[0] = 1 << 2; // both writes are on page 2 (row 10), reported once
    c.requestUpdate(true, { x: 0, y: 0, width: 64, height: 64 });
    expect((await c.readUpdate()).map((r) => r.x)).toEqual([0]);
    c.requestUpdate(true);
    expect((await c.readUpdate()).map((r) => r.x)).toEqual([192]);
  });

  it("sends DesktopSize and the new picture when the mode changes", async () => {
    const screen = screenWithPattern(160, 100);
    const display = await serve(screen);
    const c = await client(display.port, [Encoding.Raw, Encoding.DesktopSize]);
    c.requestUpdate(false);
    await c.readUpdate();
    c.requestUpdate(true);
    setMode(screen, 96, 64);
    const rects = await c.readUpdate();
    expect(rects[0]).toMatchObject({ encoding: Encoding.DesktopSize, width: 96, height: 64 });
    expect([c.width, c.height]).toEqual([96, 64]);
    expect(rects[1]).toMatchObject({ x: 0, y: 0, width: 96, height: 64, encoding: Encoding.Raw });
  });

  it("honours SetPixelFormat: 16 bpp big-endian RGB565 and 32 bpp with swapped channels", async () => {
    const screen = screenWithPattern(64, 8);
    screen.fb.set([0xff, 0x80, 0x00, 0], 0); // pixel 0: R=0x00 G=0x80 B=0xff
    const display = await serve(screen);
    const c = await client(display.port);
    c.setPixelFormat({ bitsPerPixel: 16, depth: 16, bigEndian: true, trueColour: true, redMax: 31, greenMax: 63, blueMax: 31, redShift: 11, greenShift: 5, blueShift: 0 });
    c.requestUpdate(false, { x: 0, y: 0, width: 1, height: 1 });
    const [r16] = await c.readUpdate();
    expect(r16!.pixels!.readUInt16BE(0)).toBe((0 << 11) | (32 << 5) | 31);
    c.setPixelFormat({ bitsPerPixel: 32, depth: 24, bigEndian: false, trueColour: true, redMax: 255, greenMax: 255, blueMax: 255, redShift: 0, greenShift: 8, blueShift: 16 });
    c.requestUpdate(false, { x: 0, y: 0, width: 1, height: 1 });
    const [r32] = await c.readUpdate();
    expect(r32!.pixels!.readUInt32LE(0)).toBe(0xff8000);
  });

  it("forwards key events to the key sink", async () => {
    const screen = screenWithPattern(16, 16);
    const keys: [number, boolean][] = [];
    screen.onKey = (k, d) => keys.push([k, d]);
    const display = await serve(screen);
    const c = await client(display.port);
    c.key(0x61, true);
    c.key(0xff0d, false);
    c.requestUpdate(false);
    await c.readUpdate();
    expect(keys).toEqual([[0x61, true], [0xff0d, false]]);
  });

  it("speaks RFB 3.3 (server-chosen security None)", async () => {
    const display = await serve(screenWithPattern(32, 16));
    const bytes = await rawExchange(display.port, [Buffer.from("RFB 003.003\n"), Buffer.of(1)], 12 + 4 + 24 + 9);
    expect(bytes.subarray(12, 16)).toEqual(Buffer.of(0, 0, 0, 1));
    expect(bytes.readUInt16BE(16)).toBe(32);
    expect(bytes.readUInt16BE(18)).toBe(16);
  });

  it("closes a connection that sends garbage and keeps serving others", async () => {
    const screen = screenWithPattern(32, 16);
    const display = await serve(screen);
    for (const bad of [
      [Buffer.from("HELLO WORLD\n")],
      [Buffer.from("RFB 003.008\n"), Buffer.of(2)], // VNC authentication was not offered
      [Buffer.from("RFB 003.008\n"), Buffer.of(1), Buffer.of(1), Buffer.of(99)], // unknown message type
      [Buffer.from("RFB 003.008\n"), Buffer.of(1), Buffer.of(1), Buffer.from([0, 0, 0, 0, 24, 24, 0, 0, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0])], // colour map
      [Buffer.from("RFB 003.008\n"), Buffer.of(1), Buffer.of(1), Buffer.from([6, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff])], // 2 GiB cut text
    ]) {
      expect(await closedAfter(display.port, bad)).toBe(true);
    }
    const c = await client(display.port);
    c.requestUpdate(false);
    await c.readUpdate();
    expect(c.width).toBe(32);
  });
});

/** Sends chunks in order and collects `want` bytes of answers. */
function rawExchange(port: number, chunks: Buffer[], want: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1");
    let got = Buffer.alloc(0);
    s.on("data", (d) => {
      got = Buffer.concat([got, d]);
      if (got.length >= want) {
        s.destroy();
        resolve(got);
      }
    });
    s.on("error", reject);
    s.once("connect", () => chunks.forEach((c) => s.write(c)));
  });
}

/** True when the server closes the connection after the client sent `chunks`. */
function closedAfter(port: number, chunks: Buffer[]): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    const timer = setTimeout(() => (s.destroy(), resolve(false)), 2000);
    s.on("data", () => {});
    s.on("error", () => {});
    s.on("close", () => (clearTimeout(timer), resolve(true)));
    s.once("connect", () => chunks.forEach((c) => s.write(c)));
  });
}
