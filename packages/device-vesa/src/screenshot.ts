import { renameSync, writeFileSync } from "node:fs";
import { encodePng, writeScreenshot } from "./displays/png.js";
import { Encoding } from "./displays/vnc/encodings.js";
import { RfbClient } from "./displays/vnc/client.js";
import type { FrameSource } from "./screen.js";

/** In-process screenshot: a PNG of the device's current picture. */
export function screenshot(source: FrameSource | { screen: FrameSource }, path: string): void {
  writeScreenshot("screen" in source ? source.screen : source, path);
}

/**
 * `vmm screenshot`: connects to a running VM's VNC display (127.0.0.1:port by default) and writes its picture
 * as a PNG at `path`. Returns the picture size.
 */
export async function screenshotFromVnc(options: { port: number; host?: string; path: string; timeoutMs?: number }): Promise<{ width: number; height: number }> {
  const client = await RfbClient.connect(options.port, options.host);
  const timer = setTimeout(() => client.close(), options.timeoutMs ?? 10_000);
  try {
    client.setEncodings([Encoding.Zlib, Encoding.Raw]);
    client.requestUpdate(false);
    await client.readUpdate();
    const tmp = `${options.path}.${process.pid}.tmp`;
    writeFileSync(tmp, encodePng(client.frame));
    renameSync(tmp, options.path);
    return { width: client.width, height: client.height };
  } finally {
    clearTimeout(timer);
    client.close();
  }
}
