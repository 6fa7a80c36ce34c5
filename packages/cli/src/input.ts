// Reading the files a VM boots from (kernel, initrd, firmware): regular files only, and only what fits in RAM.
import type { Stats } from "node:fs";
import { constants, open, stat, type FileHandle } from "node:fs/promises";
import { FileError } from "./errors.js";

export const MiB = 2 ** 20;
const sizeText = (bytes: number) => `${bytes} bytes (${(bytes / MiB).toFixed(bytes % MiB ? 1 : 0)} MiB)`;

/**
 * Reads a kernel or initrd: only a regular file (a device such as /dev/zero would be read until memory runs out,
 * a FIFO blocks), and only one that fits in guest RAM.
 */
export async function readInput(what: string, path: string, ram: number): Promise<Uint8Array> {
  const refuse = (problem: string) => new FileError(what, path, new Error(problem));
  let info: Stats;
  try {
    info = await stat(path);
  } catch (error) {
    throw new FileError(what, path, error);
  }
  if (info.isDirectory()) throw new FileError(what, path, Object.assign(new Error("is a directory"), { code: "EISDIR" }));
  if (!info.isFile()) throw refuse(`not a regular file (${fileType(info)}); give a file`);
  if (info.size > ram) throw refuse(`${sizeText(info.size)} does not fit in the guest's ${sizeText(ram)} of RAM (-m)`);
  let handle: FileHandle | undefined;
  try {
    // O_NONBLOCK: should the path have been replaced by a FIFO since stat, open must not wait for a writer.
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
    const again = await handle.stat();
    if (!again.isFile()) throw refuse(`not a regular file (${fileType(again)}); give a file`);
    if (again.size > ram) throw refuse(`${sizeText(again.size)} does not fit in the guest's ${sizeText(ram)} of RAM (-m)`);
    const bytes = new Uint8Array(again.size);
    let filled = 0;
    while (filled < bytes.length) {
      const { bytesRead } = await handle.read(bytes, filled, bytes.length - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return filled === bytes.length ? bytes : bytes.subarray(0, filled);
  } catch (error) {
    if (error instanceof FileError) throw error;
    throw new FileError(what, path, error);
  } finally {
    await handle?.close();
  }
}

function fileType(info: Stats): string {
  if (info.isCharacterDevice()) return "a character device";
  if (info.isBlockDevice()) return "a block device";
  if (info.isFIFO()) return "a FIFO";
  if (info.isSocket()) return "a socket";
  return "not a file";
}

