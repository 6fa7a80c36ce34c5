import { describe, expect, it } from "vitest";
import { AddressConflictError, ConfigurationError, MmioBackedMemoryMapper, createMmioSpace, createPortIoSpace } from "@vmm/core";
import { VesaDevice } from "../src/device.js";
import { VbeIndex } from "../src/vbe/registers.js";
import { machine } from "./support/guest.js";

const MiB = 1 << 20;

describe("VESA PCI function", () => {
  it("enumerates as the Bochs/QEMU std-VGA display controller with a prefetchable framebuffer BAR", () => {
    const { guest } = machine();
    expect(guest.configRead(0x00)).toBe(0x11111234);
    expect(guest.configRead(0x08) >>> 8).toBe(0x030000);
    expect(guest.configRead(0x2c)).toBe(0x11001af4);
    const bar = guest.configRead(0x10);
    expect(bar & 0xf).toBe(0x8); // memory, 32-bit, prefetchable
    expect(guest.sizeBar0().size).toBe(16 * MiB);
    expect(guest.vbeRead(VbeIndex.ID)).toBe(0xb0c5);
    expect(guest.vbeRead(VbeIndex.VIDEO_MEMORY_64K)).toBe(256);
  });

  it("maps the framebuffer where the guest puts BAR 0 and follows moves and decode toggles", () => {
    const { guest, mmio, device } = machine(4 * MiB);
    const first = guest.sizeBar0().address;
    expect(device.framebufferAddress).toBe(first);
    mmio.write(first + 8, 4, 0x11223344);
    expect([...device.screen.fb.subarray(8, 12)]).toEqual([0x44, 0x33, 0x22, 0x11]);

    const moved = 0xd0000000;
    guest.configWrite(0x10, moved);
    expect(device.framebufferAddress).toBe(moved);
    expect(mmio.read(moved + 8, 4)).toBe(0x11223344);
    const missesBefore = mmio.unhandled;
    mmio.write(first + 8, 4, 0); // the old window is gone
    expect(mmio.unhandled).toBe(missesBefore + 1);
    expect(mmio.read(moved + 8, 4)).toBe(0x11223344);

    const command = guest.configRead(0x04) & 0xffff;
    guest.configWrite(0x04, command & ~0x2); // memory decode off
    expect(device.framebufferAddress).toBeUndefined();
    mmio.write(moved + 8, 4, 0);
    expect(mmio.read(moved + 8, 4)).toBe(0xffffffff);
    guest.configWrite(0x04, command);
    expect(mmio.read(moved + 8, 4)).toBe(0x11223344);
  });

  it("describes the enabled mode as screen_info at the BAR address", () => {
    const { guest, device } = machine();
    expect(() => device.screenInfo()).toThrow(ConfigurationError);
    guest.setMode(1024, 768, 32);
    expect(device.screenInfo()).toMatchObject({ lfb_base: guest.sizeBar0().address, lfb_width: 1024, lfb_height: 768, lfb_linelength: 4096, lfb_size: 256 });
  });

  it("reset disables the mode", () => {
    const { guest, device } = machine();
    guest.setMode(640, 480, 16);
    expect(device.screen.scanout).toBeDefined();
    device.reset();
    expect(device.screen.scanout).toBeUndefined();
  });

  it("refuses bad framebuffer sizes and a second device on the VBE ports", () => {
    const pio = createPortIoSpace();
    const mapper = new MmioBackedMemoryMapper(createMmioSpace());
    for (const fbSize of [3 * MiB, 512 * 1024, 512 * MiB]) {
      expect(() => new VesaDevice({ name: "v", mapper, pio, fbSize })).toThrow(/power of two/);
    }
    const { bus, pio: pio2, mmio } = machine();
    const second = new VesaDevice({ name: "vesa1", mapper: new MmioBackedMemoryMapper(mmio), pio: pio2, fbSize: MiB });
    expect(() => bus.attach(second)).toThrow(AddressConflictError);
  });
});
