import { afterEach, describe, expect, it } from "vitest";
import type { RawClient } from "./support/client.js";
import { hostIo } from "./support/gate.js";
import { type RunningServer, startServer } from "./support/server-process.js";
import { CMD, EINVAL, le, regionWriteRequest } from "./support/wire.js";

let server: RunningServer | undefined;
afterEach(() => server?.stop());

const CONFIG = 7;

async function connected(device: string): Promise<RawClient> {
  server = await startServer(device);
  const client = server.connect();
  client.negotiate();
  return client;
}

/** [offset, id] of each capability, following the list from 0x34. */
function walk(config: Uint8Array): [number, number][] {
  const out: [number, number][] = [];
  for (let at = config[0x34]! & 0xfc; at !== 0 && out.length < 48; at = config[at + 1]! & 0xfc) out.push([at, config[at]!]);
  return out;
}

/** [offset, id, version] of each extended capability from 0x100. */
function walkExtended(config: Uint8Array): [number, number, number][] {
  const out: [number, number, number][] = [];
  for (let at = 0x100; at !== 0 && out.length < 48; ) {
    const header = le(config, at, 4);
    if (header === 0) break;
    out.push([at, header & 0xffff, (header >>> 16) & 0xf]);
    at = header >>> 20;
  }
  return out;
}

function identity(config: Uint8Array) {
  return {
    vendor: le(config, 0, 2),
    device: le(config, 2, 2),
    revision: config[8],
    classCode: le(config, 9, 4) & 0xffffff,
    headerType: config[0x0e],
    subsystemVendor: le(config, 0x2c, 2),
    subsystem: le(config, 0x2e, 2),
    pin: config[0x3d],
    capabilitiesListed: (le(config, 6, 2) & 0x10) !== 0,
  };
}

/** Writes all ones to a BAR register and reads back what sticks (restoring the old value after). */
function size(client: RawClient, offset: number, ones = 0xffffffff): number {
  const old = client.read32(CONFIG, offset);
  client.write32(CONFIG, offset, ones);
  const mask = client.read32(CONFIG, offset);
  client.write32(CONFIG, offset, old);
  return mask;
}

describe.skipIf(!hostIo.ok)("config space", () => {
  it("rtl8168: IDs, the chip's capabilities at their offsets, AER/VC/DSN, BAR sizing", async () => {
    const client = await connected("rtl8168");
    const config = client.read(CONFIG, 0, 4096);
    expect(identity(config)).toEqual({ vendor: 0x10ec, device: 0x8168, revision: 0x15, classCode: 0x020000, headerType: 0, subsystemVendor: 0x10ec, subsystem: 0x0123, pin: 1, capabilitiesListed: true });
    expect(walk(config)).toEqual([[0x40, 0x01], [0x50, 0x05], [0x70, 0x10], [0xb0, 0x11], [0xd0, 0x03]]);
    expect(walkExtended(config)).toEqual([[0x100, 1, 1], [0x140, 2, 1], [0x160, 3, 1]]);
    expect(le(config, 0x52, 2) & 0x8e).toBe(0x80); // MSI: 64-bit, one vector
    expect(le(config, 0x72, 2)).toBe(0x0002); // PCIe v2 endpoint
    expect(le(config, 0x70 + 0x0c, 4) & 0x3ff).toBe(0x11); // link: 2.5 GT/s x1
    expect(le(config, 0x70 + 0x12, 2) & 0x3ff).toBe(0x11);
    expect([le(config, 0xb2, 2) & 0x7ff, le(config, 0xb4, 4), le(config, 0xb8, 4)]).toEqual([3, 0x4, 0x804]); // 4 vectors in BAR4
    expect([le(config, 0x164, 4), le(config, 0x168, 4)]).toEqual([0x684ce000, 0x00000001]);

    expect(size(client, 0x10)).toBe(0xffffff01); // I/O, 256 bytes
    expect(size(client, 0x14)).toBe(0);
    expect(size(client, 0x18)).toBe(0xfffff004); // 64-bit memory, 4 KiB
    expect(size(client, 0x1c)).toBe(0xffffffff);
    expect(size(client, 0x20)).toBe(0xffffc004); // 64-bit memory, 16 KiB
    expect(size(client, 0x24)).toBe(0xffffffff);
    expect(size(client, 0x30)).toBe(0); // no ROM
    client.close();
  });

  it("nvme: class 010802, PM/MSI-X/PCIe (version 1)/MSI, a 64-bit BAR at index 3, nothing in extended space", async () => {
    const client = await connected("nvme");
    const config = client.read(CONFIG, 0, 4096);
    expect(identity(config)).toMatchObject({ vendor: 0x144d, device: 0xa808, classCode: 0x010802, pin: 1 });
    expect(walk(config)).toEqual([[0x40, 0x01], [0x50, 0x11], [0x60, 0x10], [0x80, 0x05]]);
    expect([le(config, 0x52, 2) & 0x7ff, le(config, 0x54, 4), le(config, 0x58, 4)]).toEqual([7, 0x2000, 0x3000]);
    expect(le(config, 0x82, 2)).toBe(0x0186); // MSI: per-vector mask, 64-bit, 8 vectors capable
    expect(le(config, 0x62, 2)).toBe(0x0001); // PCIe capability version 1, endpoint
    expect(le(config, 0x64, 4) & (1 << 28)).not.toBe(0); // FLR capable
    expect(walkExtended(config)).toEqual([]);
    expect(size(client, 0x10)).toBe(0xffffc004);
    expect(size(client, 0x14)).toBe(0xffffffff);
    expect(size(client, 0x18)).toBe(0);
    expect(size(client, 0x1c)).toBe(0xfff0000c); // 64-bit prefetchable, 1 MiB
    expect(size(client, 0x20)).toBe(0xffffffff);
    client.close();
  });

  it("subpage-rom: conventional 256-byte space, PM and 32-bit MSI, a ROM BAR sized 64 KiB", async () => {
    const client = await connected("subpage-rom");
    const config = client.read(CONFIG, 0, 256);
    expect(identity(config)).toMatchObject({ vendor: 0x8086, device: 0x100e, classCode: 0x020000, pin: 1 });
    expect(walk(config)).toEqual([[0x40, 0x01], [0x50, 0x05]]);
    expect(le(config, 0x52, 2) & 0x80).toBe(0);
    expect(size(client, 0x10)).toBe(0xffffff00);
    expect(size(client, 0x14)).toBe(0xffffffc1);
    expect(size(client, 0x30, 0xfffff800)).toBe(0xffff0000);
    expect(client.errno(CMD.REGION_READ, new Uint8Array([0, 1, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 4, 0, 0, 0]))).toBe(EINVAL);
    client.close();
  });

  it("intx-only: PM only, one 4 KiB BAR, no MSI or MSI-X interrupts", async () => {
    const client = await connected("intx-only");
    const config = client.read(CONFIG, 0, 256);
    expect(identity(config)).toMatchObject({ vendor: 0x1234, device: 0x11e8, classCode: 0xff0000, pin: 1 });
    expect(walk(config)).toEqual([[0x40, 0x01]]);
    expect(size(client, 0x10)).toBe(0xfffff000);
    for (const index of [0, 1, 2]) {
      const reply = client.ok(CMD.GET_IRQ_INFO, new Uint8Array([16, 0, 0, 0, 0, 0, 0, 0, index, 0, 0, 0, 0, 0, 0, 0]));
      expect([le(reply.payload, 0, 4), le(reply.payload, 8, 4), le(reply.payload, 12, 4)]).toEqual([16, index, index === 0 ? 1 : 0]);
    }
    client.close();
  });

  it("applies write masks: read-only IDs, writable command bits, write-1-to-clear status, config writes of any width", async () => {
    const client = await connected("intx-only");
    client.write32(CONFIG, 0, 0xffffffff);
    expect(client.read32(CONFIG, 0)).toBe(0x11e81234);
    client.write(CONFIG, 4, new Uint8Array([0xff, 0xff]));
    expect(le(client.read(CONFIG, 4, 2), 0, 2)).toBe(0x0546); // memory, bus master, parity, SERR, INTx disable (no I/O BAR)
    client.write(CONFIG, 0x3c, new Uint8Array([0x0b]));
    expect(client.read(CONFIG, 0x3c, 2)).toEqual(new Uint8Array([0x0b, 0x01]));
    // PMCSR: power state writable, PME status write-1-to-clear (reads 0 here).
    client.write(CONFIG, 0x44, new Uint8Array([0x03, 0x81]));
    expect(le(client.read(CONFIG, 0x44, 2), 0, 2)).toBe(0x0103);
    client.close();
  });

  it("serves the rtl8168's VPD through the capability's address/data registers", async () => {
    const client = await connected("rtl8168");
    const vpd = new Uint8Array(64);
    for (let address = 0; address < vpd.length; address += 4) {
      client.write(CONFIG, 0xd2, new Uint8Array([address, 0]));
      const flagged = le(client.read(CONFIG, 0xd2, 2), 0, 2);
      expect(flagged).toBe(0x8000 | address);
      vpd.set(client.read(CONFIG, 0xd4, 4), address);
    }
    expect(vpd[0]).toBe(0x82);
    const length = le(vpd, 1, 2);
    expect(new TextDecoder().decode(vpd.subarray(3, 3 + Math.min(length, 14)))).toBe("Realtek RTL816");
    client.close();
  });

  it("reads the option ROM: signature, PCIR naming 8086:100e, the pattern, a zero checksum", async () => {
    const client = await connected("subpage-rom");
    const rom = client.read(6, 0, 0x10000);
    expect([rom[0], rom[1], rom[2]]).toEqual([0x55, 0xaa, 0x80]);
    const pcir = le(rom, 0x18, 2);
    expect(new TextDecoder().decode(rom.subarray(pcir, pcir + 4))).toBe("PCIR");
    expect([le(rom, pcir + 4, 2), le(rom, pcir + 6, 2)]).toEqual([0x8086, 0x100e]);
    for (const i of [0x100, 0x101, 0x1234, 0xfffe]) expect(rom[i]).toBe((i * 7 + 3) & 0xff);
    expect(rom.reduce((a, b) => (a + b) & 0xff, 0)).toBe(0);
    expect(client.errno(CMD.REGION_WRITE, regionWriteRequest(6, 0, new Uint8Array([0])))).toBe(EINVAL);
    client.close();
  });

  it("DEVICE_RESET and the nvme's FLR restore the config space and the engine", async () => {
    const client = await connected("nvme");
    client.write32(CONFIG, 0x10, 0xfebf0000);
    client.write(CONFIG, 4, new Uint8Array([0x06, 0x00]));
    client.write32(0, 0x1000 + 0x38, 0x5555aaaa);
    expect(client.read32(0, 0x1038)).toBe(0x5555aaaa);
    client.ok(CMD.RESET);
    expect(client.read32(CONFIG, 0x10)).toBe(0x4);
    expect(le(client.read(CONFIG, 4, 2), 0, 2)).toBe(0);
    expect(client.read32(0, 0x1038)).toBe(0);

    client.write32(0, 0x1038, 0x77);
    client.write(CONFIG, 4, new Uint8Array([0x06, 0x00]));
    client.write(CONFIG, 0x60 + 0x08, new Uint8Array([0x10, 0xa8])); // Device Control with Initiate FLR
    expect(client.read32(0, 0x1038)).toBe(0);
    expect(le(client.read(CONFIG, 4, 2), 0, 2)).toBe(0);
    expect(le(client.read(CONFIG, 0x68, 2), 0, 2)).toBe(0x2810);
    client.close();
  });
});
