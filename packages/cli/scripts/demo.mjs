// `pnpm demo`: builds the demo guest (guests/demo.c), writes a small disk image, and runs
//   vmm run -k <demo guest> --rng -d <image>
// The guest lists the PCI bus, reads 16 bytes from virtio-rng and sector 0 of the disk, and exits.
import { spawn } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { buildGuest } from "@vmm/guest-kit";

const cliDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const root = path.resolve(cliDir, "../..");

/** A 64 KiB raw image whose first sector holds a line of text. */
export async function writeDemoDisk(file) {
  const image = new Uint8Array(64 * 1024);
  image.set(new TextEncoder().encode("Hello from a virtio-blk disk image written by pnpm demo\n"));
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, image);
  return file;
}

export async function demoCommand() {
  const kernel = await buildGuest("demo", { format: "elf", source: path.join(cliDir, "guests/demo.c") });
  const disk = await writeDemoDisk(path.join(tmpdir(), "vmm-demo", "disk.img"));
  return [path.join(cliDir, "bin/vmm.js"), "run", "-k", kernel, "--rng", "-d", disk, "--name", "demo"];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = await demoCommand();
  // Echo the command with paths inside the repository shown relative to it.
  const shown = args.slice(1).map((a) => (a.startsWith(root + path.sep) ? path.relative(root, a) : a));
  console.log(`$ vmm ${shown.join(" ")}`);
  const child = spawn(process.execPath, args, { stdio: "inherit" });
  child.on("exit", (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
}
