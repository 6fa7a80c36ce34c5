import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { blockDeviceSize, HostIoError, lockFile } from "../src/index.js";

describe("lockFile: open-file-description locks", () => {
  let dir: string;
  let path: string;
  const fds: number[] = [];
  const open = (flags: string) => {
    const fd = openSync(path, flags);
    fds.push(fd);
    return fd;
  };
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "host-io-lock-"));
    path = join(dir, "image");
    writeFileSync(path, new Uint8Array(4096));
  });
  afterEach(() => {
    for (const fd of fds.splice(0)) closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  });

  it("conflicts between two opens in one process: exclusive excludes everyone, shared excludes writers", () => {
    const a = open("r+");
    const b = open("r+");
    const c = open("r");
    expect(lockFile(a, "exclusive")).toBe(true);
    expect(lockFile(b, "exclusive")).toBe(false);
    expect(lockFile(c, "shared")).toBe(false);
    expect(lockFile(a, "unlock")).toBe(true);
    expect(lockFile(b, "shared")).toBe(true);
    expect(lockFile(c, "shared")).toBe(true);
    expect(lockFile(a, "exclusive")).toBe(false);
  });

  it("drops the lock when the open file is closed", () => {
    const a = openSync(path, "r+");
    const b = open("r+");
    expect(lockFile(a, "exclusive")).toBe(true);
    expect(lockFile(b, "exclusive")).toBe(false);
    closeSync(a);
    expect(lockFile(b, "exclusive")).toBe(true);
  });

  it("throws on bad input and on a bad fd", () => {
    const a = open("r+");
    expect(() => lockFile(a, "both" as never)).toThrow(TypeError);
    expect(() => lockFile(1_000_000, "shared")).toThrow(HostIoError);
    // A shared (read) lock needs read access, an exclusive one write access.
    const w = open("w");
    expect(() => lockFile(w, "shared")).toThrow(/EBADF/);
  });

  it("blockDeviceSize refuses a regular file (ENOTTY)", () => {
    expect(() => blockDeviceSize(open("r"))).toThrow(/BLKGETSIZE64 failed: ENOTTY/);
  });
});
