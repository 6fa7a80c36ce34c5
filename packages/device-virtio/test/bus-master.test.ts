import { describe, expect, it } from "vitest";
import { MemoryBlockBackend } from "../src/backends/block.js";
import type { NetBackend } from "../src/backends/net-socket.js";
import { StreamChannel } from "../src/backends/channel.js";
import { VirtioBlk } from "../src/devices/blk.js";
import { VirtioConsole } from "../src/devices/console.js";
import { VirtioNet } from "../src/devices/net.js";
import { VirtioRng } from "../src/devices/rng.js";
import { capabilities, modernDriverOver, pciMachine } from "./pci-machine.js";
import { PassThrough } from "node:stream";
import { until } from "./harness.js";

/** MSI-X on with vector 1 unmasked, so a used-buffer interrupt is visible in `m.msis`. */
function msixOn(m: ReturnType<typeof pciMachine>) {
  const cap = capabilities(m.cfg).find(([, id]) => id === 0x11)![0];
  m.cfgw(cap + 2, 2, 0x8000);
  const table = m.bar(2)!;
  m.mmio.write(table + 16, 4, 0xfee0_0000);
  m.mmio.write(table + 24, 4, 0x41);
  m.mmio.write(table + 28, 4, 0);
}

const settle = () => new Promise((r) => setTimeout(r, 20));

/** With PCI Bus Master Enable clear a function touches no guest memory: no descriptor reads, no used ring, no data. */
describe("virtio-pci under Bus Master Enable", () => {
  it("a doorbell while BME is clear (trapped or ioeventfd) does nothing until BME is set; then the request completes", () => {
    const m = pciMachine(new VirtioRng());
    msixOn(m);
    const d = modernDriverOver(m);
    d.init({ vectors: [1], configVector: 0 });
    m.setBusMaster(false);
    const ring = d.rings[0]!;
    const buf = m.alloc.alloc(32);
    ring.post([{ addr: buf, len: 32, write: true }]);
    d.kick(0); // trapped MMIO doorbell
    m.ioevents.live()[0]!.notify(); // the ioeventfd doorbell
    expect(ring.usedIdx()).toBe(0);
    expect(ring.availEvent()).toBe(0); // not even avail_event was written
    expect([...m.memory.view(buf, 32)].every((b) => b === 0)).toBe(true);
    expect(m.msis).toEqual([]);
    m.setBusMaster(true);
    expect(ring.takeUsed()).toEqual([{ id: 0, len: 32 }]);
    expect([...m.memory.view(buf, 32)].some((b) => b !== 0)).toBe(true);
    expect(m.msis).toEqual([{ address: 0xfee0_0000, data: 0x41 }]);
  });

  it("the transport follows the command register: clear at power-on, set and cleared by the guest, cleared by a function reset", () => {
    const m = pciMachine(new VirtioRng(), "modern", { busMaster: false });
    expect(m.fn.transport.busMasterEnabled).toBe(false);
    m.setBusMaster(true);
    expect(m.fn.transport.busMasterEnabled).toBe(true);
    m.setBusMaster(false);
    expect(m.fn.transport.busMasterEnabled).toBe(false);
    m.setBusMaster(true);
    m.bus.reset();
    expect(m.fn.transport.busMasterEnabled).toBe(false);
  });

  it("a function that was never given BME serves nothing", () => {
    const m = pciMachine(new VirtioRng(), "modern", { busMaster: false });
    const d = modernDriverOver(m);
    d.init();
    d.rings[0]!.post([{ addr: m.alloc.alloc(8), len: 8, write: true }]);
    d.kick(0);
    expect(d.rings[0]!.usedIdx()).toBe(0);
    m.setBusMaster(true);
    expect(d.rings[0]!.usedIdx()).toBe(1);
  });

  function blkMachine() {
    const disk = Uint8Array.from({ length: 8 * 512 }, (_, i) => (i * 7 + 1) & 0xff);
    const device = new VirtioBlk(new MemoryBlockBackend(disk));
    const m = pciMachine(device);
    const d = modernDriverOver(m);
    d.init();
    const header = m.alloc.alloc(16);
    m.memory.writeU32(header, 0); // IN
    m.memory.writeU64(header + 8, 1n); // sector 1
    const data = m.alloc.alloc(512);
    const status = m.alloc.alloc(1);
    m.memory.writeU8(status, 0xee);
    d.rings[0]!.post([{ addr: header, len: 16 }, { addr: data, len: 512, write: true }, { addr: status, len: 1, write: true }]);
    d.kick(0); // the read starts with BME set
    return { m, d, device, disk, data, status, ring: d.rings[0]! };
  }

  it("a block read that completes while BME is clear is published only when BME is set again", async () => {
    const { m, device, disk, data, status, ring } = blkMachine();
    m.setBusMaster(false);
    await until(() => device.pendingRequests === 0);
    await settle();
    expect(ring.usedIdx()).toBe(0);
    expect(m.memory.readU8(status)).toBe(0xee);
    expect([...m.memory.view(data, 512)].every((b) => b === 0)).toBe(true);
    m.setBusMaster(true);
    expect(ring.takeUsed()).toEqual([{ id: 0, len: 513 }]);
    expect(m.memory.readU8(status)).toBe(0);
    expect([...m.memory.view(data, 512)]).toEqual([...disk.subarray(512, 1024)]);
  });

  it("a completion held while BME is clear is dropped if the device is reset meanwhile", async () => {
    const { m, d, device, data, status, ring } = blkMachine();
    m.setBusMaster(false);
    await until(() => device.pendingRequests === 0);
    d.w(0x14, 1, 0); // device_status = 0: reset
    m.setBusMaster(true);
    await settle();
    expect(ring.usedIdx()).toBe(0);
    expect(m.memory.readU8(status)).toBe(0xee);
    expect([...m.memory.view(data, 512)].every((b) => b === 0)).toBe(true);
  });

  it("virtio-net keeps a received frame while BME is clear and delivers it when BME is set", () => {
    let receive: (f: Uint8Array) => void = () => {};
    const backend: NetBackend = { open: (r) => void (receive = r), send() {}, async close() {} };
    const m = pciMachine(new VirtioNet(backend, [0x52, 0x54, 0, 0, 0, 9]));
    const d = modernDriverOver(m);
    d.init();
    const buf = m.alloc.alloc(2048);
    d.rings[0]!.post([{ addr: buf, len: 2048, write: true }]);
    m.setBusMaster(false);
    receive(Uint8Array.from({ length: 60 }, (_, i) => i + 1));
    expect(d.rings[0]!.usedIdx()).toBe(0);
    expect(m.memory.readU8(buf + 12)).toBe(0);
    m.setBusMaster(true);
    expect(d.rings[0]!.takeUsed()).toEqual([{ id: 0, len: 72 }]);
    expect(m.memory.readU8(buf + 12)).toBe(1);
  });

  it("virtio-console holds host input while BME is clear, also across DRIVER_OK, and delivers it when BME is set", async () => {
    const input = new PassThrough();
    const device = new VirtioConsole(new StreamChannel(input, new PassThrough()));
    const m = pciMachine(device);
    m.setBusMaster(false);
    const d = modernDriverOver(m);
    d.init();
    const buf = m.alloc.alloc(16);
    d.rings[0]!.post([{ addr: buf, len: 16, write: true }]);
    d.kick(0);
    input.write("hi");
    await until(() => device.buffered === 2);
    expect(d.rings[0]!.usedIdx()).toBe(0);
    m.setBusMaster(true);
    expect(d.rings[0]!.takeUsed()).toEqual([{ id: 0, len: 2 }]);
    expect(new TextDecoder().decode(m.memory.view(buf, 2))).toBe("hi");
  });
});
