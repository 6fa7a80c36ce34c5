import { describe, expect, it } from "vitest";
import { Q35HostBridge, Q35Reg, type EcamWindow, type PamSegment } from "../src/index.js";
import { decodePciexbar, pamSegments } from "../src/q35-host-bridge.js";
import { makeRig } from "./helpers.js";

function rig() {
  const ecam: EcamWindow[] = [];
  const pam: PamSegment[][] = [];
  const bridge = new Q35HostBridge({
    ecam: { base: 0xe000_0000, busCount: 256 },
    lowRamTop: 0x1000_0000,
    onEcamChange: (w) => ecam.push(w),
    onPamChange: (s) => pam.push([...s]),
  });
  const { bus } = makeRig({ hostBridge: false });
  bus.attach(bridge, { device: 0 });
  return { bus, bridge, ecam, pam };
}

describe("Q35 host bridge", () => {
  it("reads as 8086:29c0 with QEMU's subsystem 1af4:1100, ECAM enabled where the machine put it, TOLUD and SMRAM defaults", () => {
    const { bus } = rig();
    expect(bus.configRead({ device: 0 }, 0, 4)).toBe(0x29c0_8086);
    expect(bus.configRead({ device: 0 }, 0x2c, 4)).toBe(0x1100_1af4);
    expect(bus.configRead({ device: 0 }, Q35Reg.PCIEXBAR, 4)).toBe(0xe000_0001);
    expect(bus.configRead({ device: 0 }, Q35Reg.PCIEXBAR + 4, 4)).toBe(0);
    expect(bus.configRead({ device: 0 }, Q35Reg.TOLUD, 2)).toBe(0x1000);
    expect(bus.configRead({ device: 0 }, Q35Reg.SMRAM, 1)).toBe(0x02);
    expect(bus.configRead({ device: 0 }, Q35Reg.ESMRAMC, 1)).toBe(0x38);
  });

  it("reports PCIEXBAR writes as SeaBIOS makes them (disable, high dword, base with enable) and masks reserved bits", () => {
    const { bus, ecam } = rig();
    bus.configWrite({ device: 0 }, Q35Reg.PCIEXBAR, 4, 0);
    bus.configWrite({ device: 0 }, Q35Reg.PCIEXBAR + 4, 4, 0);
    bus.configWrite({ device: 0 }, Q35Reg.PCIEXBAR, 4, 0xb000_0001);
    expect(ecam).toEqual([
      { enabled: false, base: 0, busCount: 256 },
      { enabled: false, base: 0, busCount: 256 },
      { enabled: true, base: 0xb000_0000, busCount: 256 },
    ]);
    bus.configWrite({ device: 0 }, Q35Reg.PCIEXBAR, 4, 0xffff_ffff);
    expect(bus.configRead({ device: 0 }, Q35Reg.PCIEXBAR, 4)).toBe(0xfc00_0007);
    expect(ecam.at(-1)!.enabled).toBe(false); // length 11b is reserved
    bus.configWrite({ device: 0 }, Q35Reg.PCIEXBAR, 4, 0xc800_0003);
    expect(ecam.at(-1)).toEqual({ enabled: true, base: 0xc800_0000, busCount: 128 });
  });

  it("decodes base alignment per length and bits 35:32 from the high dword", () => {
    expect(decodePciexbar(0xb400_0005, 0x1)).toEqual({ enabled: true, base: 0x1_b400_0000, busCount: 64 });
    expect(decodePciexbar(0xb400_0001, 0)).toEqual({ enabled: true, base: 0xb000_0000, busCount: 256 });
  });

  it("PAM registers map to 13 segments with read/write enables; reset puts PCIEXBAR and PAM back", () => {
    const { bus, bridge, pam, ecam } = rig();
    bus.configWrite({ device: 0 }, Q35Reg.PAM0, 4, 0x3333_3330);
    bus.configWrite({ device: 0 }, Q35Reg.PAM0 + 4, 4, 0x0013_3333);
    const segments = pam.at(-1)!;
    expect(segments).toHaveLength(13);
    expect(segments.at(-1)).toEqual({ start: 0xf0000, size: 0x10000, readRam: true, writeRam: true });
    expect(segments[0]).toEqual({ start: 0xc0000, size: 0x4000, readRam: true, writeRam: true });
    expect(segments[11]).toEqual({ start: 0xec000, size: 0x4000, readRam: true, writeRam: false });
    // 0x97 is not a PAM register: the write of its byte is ignored, and PAM0's low nibble is reserved.
    expect(bus.configRead({ device: 0 }, Q35Reg.PAM0 + 4, 4)).toBe(0x0013_3333);
    bus.configWrite({ device: 0 }, Q35Reg.PAM0, 1, 0xff);
    expect(bus.configRead({ device: 0 }, Q35Reg.PAM0, 1)).toBe(0x30);
    bus.configWrite({ device: 0 }, Q35Reg.PCIEXBAR, 4, 0xb000_0001);
    bridge.reset();
    expect(pam.at(-1)!.every((s) => !s.readRam && !s.writeRam)).toBe(true);
    expect(ecam.at(-1)).toEqual({ enabled: true, base: 0xe000_0000, busCount: 256 });
    expect(pamSegments([0x10, 0x01, 0, 0, 0, 0, 0x20])[0]).toEqual({ start: 0xc0000, size: 0x4000, readRam: true, writeRam: false });
  });
});
