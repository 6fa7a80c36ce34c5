import { ConfigurationError, GuestMemory, SCREEN_INFO_SIZE, Tokens } from "@vmm/core";
import { describe, expect, it } from "vitest";
import { BootFramebufferSlot, BootParams, Layout, Machine, buildMemoryMap, loadBzImage } from "./internals.js";
import { kvmOk } from "./helpers.js";

const MiB = 1024 * 1024;

/** A minimal bzImage: 4 setup sectors with a 2.15 header, then a protected-mode part that halts. */
function bzImage(): Uint8Array {
  const b = new Uint8Array(5 * 512 + 4);
  const v = new DataView(b.buffer);
  b[0x1f1] = 4;
  b[0x200] = 0xeb;
  b[0x201] = 0x6a;
  v.setUint32(0x202, 0x53726448, true);
  v.setUint16(0x206, 0x20f, true);
  v.setUint32(0x214, 0x100000, true);
  v.setUint32(0x22c, 0x7fffffff, true);
  v.setUint16(0x236, 0x7f, true);
  v.setUint32(0x238, 2047, true);
  b.fill(0xf4, 5 * 512);
  return b;
}

/** struct screen_info for a 1024x768x32 framebuffer at 0xC0000000 (fields at their Linux offsets). */
function screenInfo(): Uint8Array {
  const s = new Uint8Array(SCREEN_INFO_SIZE);
  const v = new DataView(s.buffer);
  s[0x0f] = 0x23; // VIDEO_TYPE_VLFB
  v.setUint16(0x12, 1024, true);
  v.setUint16(0x14, 768, true);
  v.setUint16(0x16, 32, true);
  v.setUint32(0x18, 0xc0000000, true);
  v.setUint32(0x1c, 256, true); // 16 MiB in 64 KiB units
  v.setUint16(0x24, 4096, true);
  s.set([8, 16, 8, 8, 8, 0, 8, 24], 0x26);
  return s;
}

describe("screen_info in boot_params", () => {
  const e820 = buildMemoryMap(64).e820;

  it("places the given screen_info at offset 0 and keeps the setup header", () => {
    const memory = new GuestMemory([{ gpa: 0, bytes: new Uint8Array(64 * MiB) }]);
    memory.view(Layout.bootParams, 0x1000).fill(0x5a); // stale bytes must not survive
    loadBzImage(memory, bzImage(), { cmdline: "", e820, decompress: "guest", screenInfo: screenInfo() });
    const bp = memory.view(Layout.bootParams, 0x1000);
    expect([...bp.subarray(0, SCREEN_INFO_SIZE)]).toEqual([...screenInfo()]);
    expect(memory.readU8(Layout.bootParams + 0x0f)).toBe(0x23);
    expect(memory.readU32(Layout.bootParams + 0x18)).toBe(0xc0000000);
    expect(bp.subarray(SCREEN_INFO_SIZE, BootParams.extRamdiskImage).every((b) => b === 0)).toBe(true);
    expect(memory.readU32(Layout.bootParams + BootParams.magic)).toBe(0x53726448);
  });

  it("leaves screen_info zero without a boot framebuffer and refuses a wrong size", () => {
    const memory = new GuestMemory([{ gpa: 0, bytes: new Uint8Array(64 * MiB) }]);
    loadBzImage(memory, bzImage(), { cmdline: "", e820, decompress: "guest" });
    expect(memory.view(Layout.bootParams, SCREEN_INFO_SIZE).every((b) => b === 0)).toBe(true);
    expect(() => loadBzImage(memory, bzImage(), { cmdline: "", e820, decompress: "guest", screenInfo: new Uint8Array(63) })).toThrow(/screen_info must be 64 bytes/);
  });

  it("takes one provider, checks what it returns", () => {
    const hook = new BootFramebufferSlot();
    expect(hook.screenInfo()).toBeUndefined();
    hook.provide("vesa0", () => screenInfo());
    expect(hook.provider).toBe("vesa0");
    expect(hook.screenInfo()).toEqual(screenInfo());
    expect(() => hook.provide("vesa1", () => screenInfo())).toThrow(ConfigurationError);
    expect(() => hook.provide("vesa1", () => screenInfo())).toThrow(/vesa0 already provides/);
    const short = new BootFramebufferSlot();
    short.provide("x", () => new Uint8Array(10));
    expect(() => short.screenInfo()).toThrow(/64 bytes/);
    const blank = new BootFramebufferSlot();
    blank.provide("y", () => new Uint8Array(SCREEN_INFO_SIZE));
    expect(() => blank.screenInfo()).toThrow(/no video type/);
  });

  it.skipIf(!kvmOk)("a machine loading a bzImage asks the provider registered in its container", () => {
    const machine = new Machine({ memoryMiB: 64, kernel: { kind: "bzimage", bytes: bzImage() }, decompress: "guest", serial: { output: () => {} } });
    try {
      let asked = 0;
      machine.container.resolve(Tokens.BootFramebuffer).provide("display0", () => (asked++, screenInfo()));
      machine.load();
      expect(asked).toBe(1);
      expect([...machine.memory.view(Layout.bootParams, SCREEN_INFO_SIZE)]).toEqual([...screenInfo()]);
    } finally {
      machine.close();
    }
  });
});
