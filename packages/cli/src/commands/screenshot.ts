import { existsSync, writeFileSync } from "node:fs";
import path from "node:path";
import { ConfigurationError } from "@vmm/core";
import type { CliContext } from "../context.js";
import { controlRequest, vmSocket } from "../control/client.js";
import type { ScreenshotReply } from "../control/protocol.js";

/** PNG's signature, then the IHDR chunk: its length (13), type, width and height (big-endian). */
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** The PNG's size from its IHDR, or undefined when the bytes are no PNG. */
function pngSize(png: Buffer): { width: number; height: number } | undefined {
  if (png.length < 33 || !png.subarray(0, 8).equals(PNG_SIGNATURE) || png.toString("latin1", 12, 16) !== "IHDR") return undefined;
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

/**
 * `vmm screenshot NAME FILE [--force]`: the VM's display as a PNG. The VM encodes its picture and sends the bytes
 * over its control socket; this process writes FILE (relative to its own working directory) with its own
 * permissions, never the VM's, and does not replace an existing file unless --force.
 */
export async function screenshotCommand(name: string, file: string, raw: { force?: boolean }, ctx: CliContext): Promise<number> {
  const target = path.resolve(ctx.cwd, file);
  if (!raw.force && existsSync(target)) throw new ConfigurationError(`'${file}' exists; give --force to replace it`);
  const reply = (await controlRequest(name, vmSocket(name), "screenshot")) as unknown as ScreenshotReply;
  const png = Buffer.from(typeof reply.png === "string" ? reply.png : "", "base64");
  const size = pngSize(png);
  if (!size || size.width !== reply.width || size.height !== reply.height) throw new ConfigurationError(`VM '${name}' answered screenshot without a PNG of its picture`);
  try {
    writeFileSync(target, png, { flag: raw.force ? "w" : "wx" });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") throw new ConfigurationError(`'${file}' exists; give --force to replace it`);
    throw new ConfigurationError(`cannot write '${file}': ${(error as Error).message}`);
  }
  ctx.stdout(`${name}: ${reply.width}x${reply.height} picture of ${reply.device} in ${file}\n`);
  return 0;
}
