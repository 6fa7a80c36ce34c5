import { describe, expect, it } from "vitest";
import { ConfigurationError, type PciCapability } from "@vmm/core";
import { MsiCapability, MsixCapability } from "../src/index.js";
import { EXPRESS_V1_SIZE } from "../src/capabilities/express.js";
import { makeRig, STANDARD_BARS, TestFunction } from "./helpers.js";

function vendorCap(length: number, writableFrom = 0): PciCapability {
  const body = new Uint8Array(length).map((_, i) => i + 1);
  const writable = new Uint8Array(length).map((_, i) => (i >= writableFrom ? 0xff : 0));
  return { id: 0x09, body, writable };
}

describe("capability chain", () => {
  it("is empty without capabilities: pointer 0, status bit 4 clear", () => {
    const fn = new TestFunction();
    expect(fn.configRead(0x34, 1)).toBe(0);
    expect(fn.configRead(0x06, 2) & 0x10).toBe(0);
  });

  it("chains from 0x40, dword aligned, sets the pointer and status bit 4", () => {
    const fn = new TestFunction();
    expect(fn.addCapability(vendorCap(3))).toBe(0x40); // 2 + 3 -> 8 bytes
    expect(fn.addCapability(vendorCap(6))).toBe(0x48);
    expect(fn.addCapability(vendorCap(1))).toBe(0x50);
    expect(fn.configRead(0x34, 1)).toBe(0x40);
    expect(fn.configRead(0x06, 2) & 0x10).toBe(0x10);
    expect(fn.configRead(0x40, 2)).toBe(0x4809);
    expect(fn.configRead(0x48, 2)).toBe(0x5009);
    expect(fn.configRead(0x50, 2)).toBe(0x0009);
  });

  it("keeps ID and next read-only and applies the capability's own masks", () => {
    const fn = new TestFunction();
    fn.addCapability(vendorCap(6, 2));
    fn.configWrite(0x40, 4, 0xffff_ffff);
    expect(fn.configRead(0x40, 4)).toBe(0x0201_0009);
    fn.configWrite(0x44, 4, 0xeeee_eeee);
    expect(fn.configRead(0x44, 4)).toBe(0xeeee_eeee);
    // the pad after a body is read-only zero
    fn.addCapability(vendorCap(1));
    fn.configWrite(0x4b, 1, 0xff);
    expect(fn.configRead(0x4b, 1)).toBe(0);
  });

  it("computes live bytes through onRead and reports writes through onWrite", () => {
    const fn = new TestFunction();
    let counter = 0;
    const writes: number[] = [];
    const body = new Uint8Array(6);
    fn.addCapability({
      id: 0x09,
      body,
      writable: new Uint8Array(6).fill(0xff),
      onRead: () => {
        body[2] = ++counter;
      },
      onWrite: (o, s, v) => writes.push(o, s, v),
    });
    expect(fn.configRead(0x44, 1)).toBe(1);
    expect(fn.configRead(0x44, 1)).toBe(2);
    fn.configWrite(0x46, 2, 0xbeef);
    expect(writes).toEqual([4, 2, 0xbeef]);
  });

  it("calls live handlers once per access, also for a 2-byte access at an odd offset inside the dword", () => {
    const fn = new TestFunction();
    const calls: string[] = [];
    const body = new Uint8Array(6);
    fn.addCapability({
      id: 0x09,
      body,
      writable: new Uint8Array(6).fill(0xff),
      onRead: (o, s) => {
        calls.push(`r${o}/${s}`);
        body[3] = 0x5a; // live byte at 0x45
      },
      onWrite: (o, s, v) => calls.push(`w${o}/${s}=${v.toString(16)}`),
    });
    fn.configWrite(0x45, 2, 0xbeef); // body bytes 3-4: one guest access, one call
    expect(fn.configRead(0x45, 2)).toBe(0xbe5a);
    expect(calls).toEqual(["w3/2=beef", "r3/2"]);
    fn.configWrite(0x43, 1, 0x77);
    expect(fn.configRead(0x42, 4)).toBe(0x5a00_7700);
    expect(calls.slice(2)).toEqual(["w1/1=77", "r0/4"]);
  });

  it("refuses a capability that does not fit below 0x100 or has a wrong mask length", () => {
    const fn = new TestFunction({ name: "full" });
    fn.addCapability(vendorCap(150));
    expect(() => fn.addCapability(vendorCap(60))).toThrow(/full: capability 0x9 does not fit/);
    expect(() => fn.addCapability({ id: 9, body: new Uint8Array(4), writable: new Uint8Array(2) })).toThrow(ConfigurationError);
  });

  it("hides a capability by rewriting next pointers (head: the capability pointer)", () => {
    const fn = new TestFunction();
    const a = fn.addCapability(vendorCap(2));
    const b = fn.addCapability(vendorCap(2));
    const c = fn.addCapability(vendorCap(2));
    fn.hideCapability(b);
    expect(fn.configRead(a + 1, 1)).toBe(c);
    fn.hideCapability(a);
    expect(fn.configRead(0x34, 1)).toBe(c);
    fn.hideCapability(c);
    expect(fn.configRead(0x34, 1)).toBe(0);
    expect(fn.configRead(0x06, 2) & 0x10).toBe(0);
    expect(() => fn.hideCapability(c)).toThrow(/no visible capability/);
  });
});

describe("extended capabilities", () => {
  const ext = (id: number) => ({ id, version: 1, body: new Uint8Array(8) });

  it("reads a valid empty list (all-zero header) at 0x100 on an express function", () => {
    const fn = new TestFunction({ express: { type: "endpoint" } });
    expect(fn.configRead(0x100, 4)).toBe(0);
  });

  it("chains from 0x100 with ID, version and next offset", () => {
    const fn = new TestFunction({ express: { type: "endpoint" } });
    expect(fn.addExtendedCapability(ext(0x0001))).toBe(0x100);
    expect(fn.addExtendedCapability(ext(0x000b))).toBe(0x10c);
    expect(fn.configRead(0x100, 4)).toBe(((0x10c << 20) | (1 << 16) | 0x0001) >>> 0);
    expect(fn.configRead(0x10c, 4)).toBe((1 << 16) | 0x000b);
  });

  it("hides the head at 0x100 with a null ID keeping the next pointer, and unlinks the others", () => {
    const fn = new TestFunction({ express: { type: "endpoint" } });
    fn.addExtendedCapability(ext(0x0001));
    const second = fn.addExtendedCapability(ext(0x0010));
    const third = fn.addExtendedCapability(ext(0x0015));
    fn.hideExtendedCapability(0x100);
    expect(fn.configRead(0x100, 4)).toBe(((second << 20) | 0x0000) >>> 0);
    fn.hideExtendedCapability(second);
    expect(fn.configRead(0x100, 4) >>> 20).toBe(third);
  });

  it("needs a PCI Express function", () => {
    const fn = new TestFunction({ name: "plain" });
    expect(() => fn.addExtendedCapability(ext(1))).toThrow(/plain: extended capabilities need a PCI Express function/);
  });
});

describe("PCI Express capability (version 1)", () => {
  it("has the PCIe 1.1 size for each device type", () => {
    expect(EXPRESS_V1_SIZE).toEqual({ endpoint: 0x14, "legacy-endpoint": 0x14, "rc-integrated": 0x0c, "root-port": 0x24 });
    for (const [type, flags, size] of [
      ["endpoint", 0x0001, 0x14],
      ["root-port", 0x0141, 0x24],
      ["legacy-endpoint", 0x0011, 0x14],
      ["rc-integrated", 0x0091, 0x0c],
    ] as const) {
      const fn = new TestFunction({ express: { type } });
      expect(fn.configRead(0x40, 1)).toBe(0x10);
      expect(fn.configRead(0x42, 2)).toBe(flags);
      expect(fn.addCapability(vendorCap(2))).toBe(0x40 + size);
    }
  });

  it("reports a x1 2.5 GT/s link for endpoints and no link registers for an RCiEP", () => {
    const ep = new TestFunction({ express: { type: "endpoint" } });
    expect(ep.configRead(0x4c, 4)).toBe(0x11);
    expect(ep.configRead(0x52, 2)).toBe(0x11);
    const rc = new TestFunction({ express: { type: "rc-integrated" } });
    expect(rc.configRead(0x4c, 4)).toBe(0);
    expect(rc.configRead(0x52, 2)).toBe(0);
  });

  it("has a writable device control and write-1-to-clear device status", () => {
    const fn = new TestFunction({ express: { type: "endpoint" } });
    expect(fn.configRead(0x44, 4) & (1 << 15)).toBe(1 << 15); // role-based error reporting
    fn.configWrite(0x48, 2, 0x0000);
    expect(fn.configRead(0x48, 2)).toBe(0);
    fn.configWrite(0x48, 2, 0xffff);
    expect(fn.configRead(0x48, 2)).toBe(0x7fff);
    fn.configWrite(0x4a, 2, 0xffff);
    expect(fn.configRead(0x4a, 2)).toBe(0);
    expect(fn.configRead(0x0e, 1)).toBe(0);
  });

  it("gives express functions 4 KiB of config space through the bus", () => {
    const rig = makeRig();
    const fn = new TestFunction({ express: { type: "endpoint" } });
    fn.addExtendedCapability({ id: 0x0b, version: 1, body: new Uint8Array(4) });
    rig.bus.attach(fn);
    expect(rig.bus.configRead({ device: 1 }, 0x100, 4)).toBe(0x0001_000b);
  });
});

describe("MSI capability", () => {
  function msiRig(options: ConstructorParameters<typeof MsiCapability>[0]) {
    const rig = makeRig();
    const fn = new TestFunction();
    const msi = new MsiCapability(options);
    const at = fn.addCapability(msi);
    rig.bus.attach(fn);
    rig.bus.configWrite({ device: 1 }, 0x04, 2, 0x0004); // bus master: MSI is a memory write
    const w = (o: number, s: number, v: number) => rig.bus.configWrite({ device: 1 }, at + o, s, v);
    const r = (o: number, s: number) => rig.bus.configRead({ device: 1 }, at + o, s);
    return { rig, fn, msi, at, w, r };
  }

  it("lays out a 64-bit capability with per-vector masking and multiple messages", () => {
    const { r, w, msi } = msiRig({ vectors: 4, address64: true, perVectorMask: true });
    expect(r(0, 1)).toBe(0x05);
    expect(r(2, 2)).toBe(0x0184); // per-vector mask, 64-bit, MMC = 2
    w(2, 2, 0xffff);
    expect(r(2, 2)).toBe(0x01f5); // enable + MME 7 stored
    expect(msi.enabledVectors).toBe(4); // never more than offered
    w(4, 4, 0xffff_ffff);
    expect(r(4, 4)).toBe(0xffff_fffc);
    w(0x10, 4, 0xffff_ffff);
    expect(r(0x10, 4)).toBe(0xf); // only 4 mask bits
    w(0x14, 4, 0xffff_ffff);
    expect(r(0x14, 4)).toBe(0); // pending is read-only
  });

  it("delivers messages with the vector in the low data bits; pends masked vectors until unmasked", () => {
    const { rig, w, r, msi } = msiRig({ vectors: 4, perVectorMask: true });
    msi.notify(0);
    expect(rig.messages).toEqual([]);
    expect(msi.dropped).toBe(1);
    w(4, 4, 0xfee0_0000);
    w(8, 4, 0x1);
    w(0xc, 2, 0x4040);
    w(2, 2, 0x0021); // enable, MME = 2 (4 vectors)
    msi.notify(3);
    expect(rig.messages).toEqual([{ address: 0x1_fee0_0000, data: 0x4043 }]);
    w(0x10, 4, 0x2);
    msi.notify(1);
    expect(rig.messages.length).toBe(1);
    expect(r(0x14, 4)).toBe(0x2);
    w(0x10, 4, 0x0);
    expect(rig.messages[1]).toEqual({ address: 0x1_fee0_0000, data: 0x4041 });
    expect(r(0x14, 4)).toBe(0);
    msi.notify(4);
    expect(msi.dropped).toBe(2);
  });

  it("lays out a 32-bit capability without masking (data at +8)", () => {
    const { rig, w, msi, fn, at } = msiRig({ vectors: 1, address64: false });
    expect(at).toBe(0x40);
    expect(() => fn.addCapability(new MsiCapability())).toThrow(/only one MSI capability/);
    w(4, 4, 0xfee0_1000);
    w(8, 2, 0x31);
    w(2, 2, 1);
    msi.notify(0);
    expect(rig.messages).toEqual([{ address: 0xfee0_1000, data: 0x31 }]);
  });

  it("rejects bad vector counts", () => {
    expect(() => new MsiCapability({ vectors: 3 })).toThrow(ConfigurationError);
  });
});
