import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { FileImage } from "../src/backends/file-image.js";

/** Another process holding an OFD lock on `path` (python3's fcntl, not our addon): resolves once it holds it. */
function holdLock(path: string, kind: "read" | "write"): Promise<ChildProcess> {
  const script = `
import fcntl, os, struct, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack("hhqqi4x", fcntl.F_WRLCK if sys.argv[2] == "write" else fcntl.F_RDLCK, 0, 0, 0, 0))
print("locked", flush=True)
time.sleep(60)
`;
  const child = spawn("python3", ["-c", script, path, kind], { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    child.stdout!.on("data", (d: Buffer) => d.toString().includes("locked") && resolve(child));
    child.on("exit", (code) => reject(new Error(`lock holder exited with ${code}`)));
  });
}

describe("FileImage", () => {
  let dir: string;
  let path: string;
  const images: FileImage[] = [];
  const children: ChildProcess[] = [];
  const openImage = async (p: string, readonly = false) => {
    const image = await FileImage.open(p, { readonly });
    images.push(image);
    return image;
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "vmm-file-image-"));
    path = join(dir, "disk.img");
    writeFileSync(path, new Uint8Array(64 * 1024));
  });
  afterEach(async () => {
    for (const c of children.splice(0)) c.kill("SIGKILL");
    for (const i of images.splice(0)) await i.close().catch(() => {});
    vi.restoreAllMocks();
    rmSync(dir, { recursive: true, force: true });
  });

  describe("locks the image like QEMU: exclusive when writable, shared when read-only", () => {
    it("refuses the same image opened twice for writing in one process (-d X -d X)", async () => {
      await openImage(path);
      await expect(FileImage.open(path)).rejects.toThrow(
        `disk image ${path} is in use: this process (is the same image given twice?) holds a lock on it, so it cannot be opened for writing`,
      );
      await expect(FileImage.open(path, { readonly: true })).rejects.toThrow(/in use: this process .*cannot be opened read-only while it is open for writing$/);
    });

    it("names the other process that writes the image, for writable and read-only opens", async () => {
      const holder = await holdLock(path, "write");
      children.push(holder);
      const who = `process ${holder.pid} (python3: `;
      await expect(FileImage.open(path)).rejects.toThrow(`disk image ${path} is in use: ${who}`);
      await expect(FileImage.open(path, { readonly: true })).rejects.toThrow(`disk image ${path} is in use: ${who}`);
      holder.kill("SIGKILL");
      await new Promise((r) => holder.once("exit", r));
      await openImage(path); // the lock died with its holder
    });

    it("lets readers share the image but keeps a writer out while one reads", async () => {
      const reader = await holdLock(path, "read");
      children.push(reader);
      await expect(FileImage.open(path)).rejects.toThrow(`is in use: process ${reader.pid} (python3: `);
      const a = await openImage(path, true);
      const b = await openImage(path, true);
      expect([a.size, b.size]).toEqual([65536, 65536]);
      reader.kill("SIGKILL");
      await new Promise((r) => reader.once("exit", r));
      await expect(FileImage.open(path)).rejects.toThrow(/in use: this process/);
      await a.close();
      await b.close();
      images.length = 0;
      await openImage(path);
    });

    it("releases the lock on close", async () => {
      const image = await FileImage.open(path);
      await image.close();
      await openImage(path);
    });
  });

  describe("close", () => {
    it("writes back a writable image (fdatasync) before closing, and does not sync a read-only one", async () => {
      const probe: FileHandle = await open(path, "r");
      const proto = Object.getPrototypeOf(probe) as FileHandle;
      await probe.close();
      const realDatasync = proto.datasync;
      const syncedFds: number[] = [];
      const datasync = vi.spyOn(proto, "datasync").mockImplementation(function (this: FileHandle) {
        syncedFds.push(this.fd); // -1 once closed
        return realDatasync.call(this);
      });
      const sync = vi.spyOn(proto, "sync");
      const image = await FileImage.open(path);
      await image.write(new Uint8Array([1, 2, 3]), 512);
      expect(datasync).not.toHaveBeenCalled();
      await image.close();
      expect(sync).not.toHaveBeenCalled();
      expect(syncedFds).toHaveLength(1);
      expect(syncedFds[0]).toBeGreaterThanOrEqual(0); // synced while still open
      expect(readFileSync(path).subarray(512, 515)).toEqual(Buffer.from([1, 2, 3]));
      await openImage(path); // and closed: the lock is gone

      for (const i of images.splice(0)) await i.close();
      datasync.mockClear();
      const ro = await FileImage.open(path, { readonly: true });
      await ro.close();
      expect(datasync).not.toHaveBeenCalled();
    });
  });

  it("refuses an empty image with a clear error", async () => {
    const empty = join(dir, "empty.img");
    writeFileSync(empty, "");
    await expect(FileImage.open(empty)).rejects.toThrow(`disk image ${empty} is empty (0 bytes)`);
    await expect(FileImage.open(empty, { readonly: true })).rejects.toThrow("is empty (0 bytes)");
  });

  // A loop device needs root and /dev/loop-control; skipped loudly without them.
  const loop = (() => {
    const backing = join(tmpdir(), `vmm-file-image-loop-${process.pid}.img`);
    writeFileSync(backing, new Uint8Array(0));
    spawnSync("truncate", ["-s", "3M", backing]);
    const r = spawnSync("losetup", ["--find", "--show", backing], { encoding: "utf8" });
    if (r.status !== 0) {
      rmSync(backing, { force: true });
      console.warn(["#".repeat(72), `# WARNING: block-device test SKIPPED: losetup failed (${(r.stderr || String(r.error)).trim()})`, "#".repeat(72)].join("\n"));
      return undefined;
    }
    return { device: r.stdout.trim(), backing };
  })();

  describe.skipIf(!loop)("on a block device", () => {
    afterEach(() => {
      spawnSync("losetup", ["-d", loop!.device]);
      rmSync(loop!.backing, { force: true });
    });

    it("takes the size from the device (stat says 0), and locks it", async () => {
      const image = await openImage(loop!.device);
      expect(image.size).toBe(3 * 1024 * 1024);
      await expect(FileImage.open(loop!.device, { readonly: true })).rejects.toThrow(/in use: this process/);
      const data = new Uint8Array(512).fill(0x5a);
      await image.write(data, 1024 * 1024);
      const back = new Uint8Array(512);
      await image.read(back, 1024 * 1024);
      expect(back).toEqual(data);
    });
  });
});
