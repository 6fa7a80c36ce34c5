/**
 * The back door's window over a stand-in device: the real BAR2 as a small register file that records what reaches
 * it, and an emulated MSI-X table of 4 vectors. Semantics of QEMU's RTL8168 VFIO quirk: table writes (bit 31 with
 * target 1) go to the emulated table and never to the device, reads of 0x74 after a table request answer the
 * address with bit 31 inverted, reads of 0x70 the emulated table's dword, and everything else reaches the device.
 */
import { container } from "tsyringe";
import { describe, expect, it } from "vitest";
import { Tokens, type QuirkDevice, type QuirkMsixTable, type SmallAccessSize } from "@vmm/core";
import plugin, { backDoorWindow, PLUGIN_NAME, QUIRK_NAME, rtl8168BackDoorQuirk } from "../src/index.js";

/** A stand-in for the real device: BAR2 as 4 KiB of registers; accesses logged. */
function standIn(options: { msix?: boolean } = {}) {
  const bar2 = new DataView(new ArrayBuffer(0x1000));
  const log: string[] = [];
  const table = new Uint32Array(16);
  for (let v = 0; v < 4; v++) table[4 * v + 3] = 1; // vectors start masked
  const msixTable: QuirkMsixTable = {
    vectors: 4,
    read: (o, s) => (s === 4 && o % 4 === 0 && o < 64 ? table[o / 4]! : 0xffff_ffff),
    write: (o, s, v) => {
      log.push(`table ${o.toString(16)}=${v.toString(16)}`);
      if (s === 4 && o % 4 === 0 && o < 64) table[o / 4] = v;
    },
  };
  const real = {
    read: (o: number, s: SmallAccessSize) => {
      log.push(`read ${o.toString(16)}/${s}`);
      return s === 4 ? bar2.getUint32(o, true) : s === 2 ? bar2.getUint16(o, true) : bar2.getUint8(o);
    },
    write: (o: number, s: SmallAccessSize, v: number) => {
      log.push(`write ${o.toString(16)}/${s}=${v.toString(16)}`);
      if (s === 4) bar2.setUint32(o, v, true);
    },
  };
  const device: QuirkDevice = {
    name: "vfio-user0",
    vendorId: 0x10ec,
    deviceId: 0x8168,
    subsystemVendorId: 0x10ec,
    subsystemId: 0x0123,
    revision: 0x15,
    classCode: 0x020000,
    bars: [{ index: 2, kind: "mem64", size: 0x1000 }],
    bar: (index) => (index === 2 ? real : { read: () => 0xffff_ffff, write: () => {} }),
    config: { read: () => 0xffff_ffff, write: () => {} },
    msixTable: options.msix === false ? undefined : msixTable,
  };
  const window = backDoorWindow(device);
  const take = () => log.splice(0);
  return { window, bar2, table, log, take };
}

describe("the RTL8168 back door quirk", () => {
  it("is one 8-byte window over BAR2 0x70 for 10ec:8168", () => {
    const { window } = standIn();
    expect([window.name, window.target, window.offset, window.size]).toEqual(["MSI-X back door", { bar: 2 }, 0x70, 8]);
    expect(rtl8168BackDoorQuirk.match).toEqual({ vendorId: 0x10ec, deviceId: 0x8168 });
    expect(rtl8168BackDoorQuirk.name).toBe(QUIRK_NAME);
  });

  it("a table write (bit 31, target 1) lands in the emulated table, not on the device; the flag then reads clear", () => {
    const { window, table, take } = standIn();
    window.write!(0, 4, 0xfee0_0000); // data: also written to the device (no request starts there)
    expect(take()).toEqual(["write 70/4=fee00000"]);
    window.write!(4, 4, 0x8001_f010); // write vector 1's address dword
    expect(take()).toEqual(["table 10=fee00000"]);
    expect(table[4]).toBe(0xfee0_0000);
    expect(window.read!(4, 4)).toBe(0x0001_f010); // bit 31 inverted: completed
    window.write!(0, 4, 0);
    window.write!(4, 4, 0x8001_f01c); // vector 1's control: unmask
    expect(table[7]).toBe(0);
  });

  it("a table read request reaches the device, and the data register then shows the emulated table's dword", () => {
    const { window, table, bar2, take } = standIn();
    table[2] = 0x4242;
    bar2.setUint32(0x70, 0xdead_beef, true);
    window.write!(4, 4, 0x0001_f008);
    expect(take()).toEqual(["write 74/4=1f008"]);
    expect(window.read!(4, 4)).toBe(0x8001_f008); // the device is read, the flag answered set
    expect(window.read!(0, 4)).toBe(0x4242);
    expect(take()).toEqual(["read 74/4", "read 70/4"]);
  });

  it("other targets pass through: the device answers both registers", () => {
    const { window, bar2, take } = standIn();
    window.write!(0, 4, 0x1234);
    window.write!(4, 4, 0x8002_f000); // target 2 (not the MSI-X table)
    expect(take()).toEqual(["write 70/4=1234", "write 74/4=8002f000"]);
    bar2.setUint32(0x74, 0x0002_f000, true); // as a chip would complete it
    expect(window.read!(4, 4)).toBe(0x0002_f000);
    expect(window.read!(0, 4)).toBe(0x1234);
    // A table request after it latches again; another target after that lets go again.
    window.write!(4, 4, 0x0001_f000);
    expect(window.read!(4, 4)).toBe(0x8001_f000);
    window.write!(4, 4, 0x0003_0000);
    bar2.setUint32(0x74, 0x7777, true);
    expect(window.read!(4, 4)).toBe(0x7777);
  });

  it("without an emulated MSI-X table a table write is dropped (never sent to the device) and the device answers data reads", () => {
    const { window, bar2, take } = standIn({ msix: false });
    window.write!(0, 4, 0x99);
    window.write!(4, 4, 0x8001_f000);
    expect(take()).toEqual(["write 70/4=99"]);
    bar2.setUint32(0x70, 0x55, true);
    expect(window.read!(0, 4)).toBe(0x55);
    expect(window.read!(4, 4)).toBe(0x0001_f000);
  });

  it("narrow and straddling accesses are dropped: reads all-ones, nothing reaches the device or the table", () => {
    const { window, take } = standIn();
    window.write!(7, 1, 0x80);
    window.write!(4, 2, 0xf000);
    window.write!(2, 4, 0x8001_0000);
    expect(window.read!(4, 2)).toBe(0xffff);
    expect(window.read!(2, 4)).toBe(0xffff_ffff);
    expect(take()).toEqual([]);
  });

  it("the plugin registers the quirk under its name", async () => {
    const vm = container.createChildContainer();
    await plugin.register(vm, {});
    const [quirk] = vm.resolveAll(Tokens.Quirk);
    expect(quirk!.plugin).toBe(PLUGIN_NAME);
    expect(quirk!.name).toBe("rtl8168-msix-back-door");
  });
});
