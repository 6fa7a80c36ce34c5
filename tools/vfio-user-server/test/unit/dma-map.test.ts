import { describe, expect, it } from "vitest";
import { type DmaFile, DmaMap } from "../../src/dma/dma-map.js";
import { DmaFault, DmaPort } from "../../src/dma/dma-port.js";
import { ProtocolError } from "../../src/protocol/errors.js";

function memoryFile(size: number): DmaFile & { bytes: Uint8Array; closed: boolean } {
  const bytes = new Uint8Array(size);
  return {
    bytes,
    closed: false,
    read: (o, n) => bytes.slice(o, o + n),
    write: (o, d) => bytes.set(d, o),
    close() {
      this.closed = true;
    },
  };
}

describe("DmaMap", () => {
  it("rejects overlaps with EEXIST and a full map with ENOSPC; unmaps exact windows only", () => {
    const map = new DmaMap(2);
    const file = memoryFile(0x2000);
    map.add({ address: 0x10000n, size: 0x2000n, readable: true, writable: true, file });
    expect(() => map.checkAdd(0x11000n, 0x1000n)).toThrow(expect.objectContaining({ errno: 17 }));
    expect(() => map.checkAdd(0xf000n, 0x2000n)).toThrow(expect.objectContaining({ errno: 17 }));
    map.add({ address: 0x12000n, size: 0x1000n, readable: true, writable: false, file: undefined });
    expect(() => map.checkAdd(0x20000n, 0x1000n)).toThrow(expect.objectContaining({ errno: 28 }));
    expect(() => map.remove(0x10000n, 0x1000n)).toThrow(ProtocolError);
    map.remove(0x10000n, 0x2000n);
    expect(file.closed).toBe(true);
    expect(map.size).toBe(1);
  });

  it("resolves transfers across adjacent windows and refuses gaps and missing permissions", () => {
    const map = new DmaMap(8);
    map.add({ address: 0x1000n, size: 0x1000n, readable: true, writable: true, file: undefined });
    map.add({ address: 0x2000n, size: 0x1000n, readable: true, writable: false, file: undefined });
    const pieces = map.resolve(0x1ff0n, 0x20, "read");
    expect(pieces).toMatchObject([{ address: 0x1ff0n, offset: 0xff0, length: 0x10, at: 0 }, { address: 0x2000n, offset: 0, length: 0x10, at: 0x10 }]);
    expect(map.resolve(0x1ff0n, 0x20, "write")).toMatch(/not writable/);
    expect(map.resolve(0x2ff0n, 0x20, "read")).toMatch(/in no DMA window/);
  });
});

describe("DmaPort", () => {
  it("uses the mapped file in fd mode and messages for windows without one (or always in messages mode)", () => {
    const map = new DmaMap(8);
    const file = memoryFile(0x1000);
    file.bytes.set([1, 2, 3], 0x10);
    map.add({ address: 0x1000n, size: 0x1000n, readable: true, writable: true, file });
    map.add({ address: 0x2000n, size: 0x1000n, readable: true, writable: true, file: undefined });
    const messages: string[] = [];
    const messenger = {
      read: (a: bigint, n: number) => (messages.push(`read ${a.toString(16)}+${n}`), new Uint8Array(n).fill(9)),
      write: (a: bigint, d: Uint8Array) => void messages.push(`write ${a.toString(16)}+${d.length}`),
    };
    const port = new DmaPort(map, messenger, "fd");
    expect([...port.read(0x1010n, 3)]).toEqual([1, 2, 3]);
    expect([...port.read(0x1ffen, 4)]).toEqual([0, 0, 9, 9]);
    port.write(0x1ffen, Uint8Array.of(5, 6, 7, 8));
    expect([...file.bytes.subarray(0xffe)]).toEqual([5, 6]);
    expect(messages).toEqual(["read 2000+2", "write 2000+2"]);
    expect(() => port.read(0x3000n, 1)).toThrow(DmaFault);
    messages.length = 0;
    new DmaPort(map, messenger, "messages").read(0x1010n, 3);
    expect(messages).toEqual(["read 1010+3"]);
  });
});
