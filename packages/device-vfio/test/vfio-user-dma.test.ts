// The server's DMA_READ / DMA_WRITE requests: served while a call waits for its reply (the server does DMA before
// answering a doorbell write), between calls from the readable watch, and refused with an errno when they reach
// outside the mapped memory, against its direction or beyond the client's max_data_xfer_size.
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import type { VfioDmaRegion } from "../src/backend/backend.js";
import { openSession } from "./support/handshake.js";
import type { PeerStep } from "./support/peer.js";
import { bytes, Cmd, COMMAND, ERROR, message, NO_REPLY, reply, REPLY, u32, u64 } from "./support/wire.js";

const EPERM = 1;
const EFAULT = 14;
const EINVAL = 22;
const ENOSYS = 38;

const RAM_IOVA = 0x10_0000;
const ROM_IOVA = 0x20_0000;

function guestMemory(): { ram: VfioDmaRegion; rom: VfioDmaRegion } {
  const ramBytes = Uint8Array.from({ length: 0x2000 }, (_, i) => i & 0xff);
  const romBytes = new Uint8Array(0x1000).fill(0x77);
  return {
    ram: { iova: RAM_IOVA, size: 0x2000, fd: -1, fileOffset: 0, bytes: ramBytes, readable: true, writable: true },
    rom: { iova: ROM_IOVA, size: 0x1000, fd: -1, fileOffset: 0, bytes: romBytes, readable: true, writable: false },
  };
}

/** Map both regions (two DMA_MAP exchanges). */
const mapSteps: PeerStep[] = [
  { op: "recv" },
  { op: "reply", bytes: reply(Cmd.DMA_MAP) },
  { op: "recv" },
  { op: "reply", bytes: reply(Cmd.DMA_MAP) },
];

/** The server's request `id` and then the client's answer to it. */
function serverRequest(id: number, command: number, payload: Uint8Array | readonly number[], flags = COMMAND): PeerStep[] {
  return [{ op: "send", bytes: message(id, command, flags, payload) }, { op: "recv" }];
}

describe("vfio-user DMA requests from the server", () => {
  it("serves DMA_READ and DMA_WRITE that arrive while a write waits for its reply", async () => {
    const { ram, rom } = guestMemory();
    const { client, messages } = await openSession(
      [
        ...mapSteps,
        { op: "recv" }, // the doorbell write
        ...serverRequest(0x77, Cmd.DMA_READ, bytes(u64(RAM_IOVA + 0x10), u64(4))),
        ...serverRequest(0x78, Cmd.DMA_WRITE, bytes(u64(RAM_IOVA + 0x1ffd), u64(3), [0xaa, 0xbb, 0xcc])),
        ...serverRequest(0x79, Cmd.DMA_READ, bytes(u64(ROM_IOVA), u64(2))),
        { op: "reply", bytes: reply(Cmd.REGION_WRITE, bytes(u64(0x28), u32(0), u32(4))) },
      ],
      { max_data_xfer_size: 4096 },
    );
    client.dmaMap(ram);
    client.dmaMap(rom);
    client.write(0, 0x28, bytes(u32(1)));
    client.close();
    const sent = (await messages()).map((m) => m.bytes);
    expect(sent[3]).toEqual(message(0x77, Cmd.DMA_READ, REPLY, bytes(u64(RAM_IOVA + 0x10), u64(4), [0x10, 0x11, 0x12, 0x13])));
    expect(sent[4]).toEqual(message(0x78, Cmd.DMA_WRITE, REPLY, bytes(u64(RAM_IOVA + 0x1ffd), u64(3))));
    expect(sent[5]).toEqual(message(0x79, Cmd.DMA_READ, REPLY, bytes(u64(ROM_IOVA), u64(2), [0x77, 0x77])));
    expect(ram.bytes.subarray(0x1ffd)).toEqual(bytes([0xaa, 0xbb, 0xcc]));
  });

  it("answers requests outside the mapped memory, against its direction or malformed with an errno", async () => {
    const { ram, rom } = guestMemory();
    const ramBefore = bytes(ram.bytes);
    const refusals: [number, number, Uint8Array, number][] = [
      [1, Cmd.DMA_READ, bytes(u64(0x5000), u64(4)), EFAULT], // nothing mapped there
      [2, Cmd.DMA_READ, bytes(u64(RAM_IOVA + 0x1ffe), u64(4)), EFAULT], // runs past the region's end
      [3, Cmd.DMA_READ, bytes(u64(RAM_IOVA), u64(0xffff_ffff_ffff_fff0n)), EFAULT], // a count beyond 2^53
      [4, Cmd.DMA_WRITE, bytes(u64(0xffff_ffff_ffff_f000n), u64(1), [1]), EFAULT], // an address beyond 2^53
      [5, Cmd.DMA_WRITE, bytes(u64(RAM_IOVA + 0x1fff), u64(2), [1, 2]), EFAULT], // across the end of RAM
      [6, Cmd.DMA_WRITE, bytes(u64(ROM_IOVA), u64(1), [1]), EPERM], // read-only memory
      [7, Cmd.DMA_READ, bytes(u64(RAM_IOVA), u64(65)), EINVAL], // beyond this client's max_data_xfer_size (64)
      [8, Cmd.DMA_READ, bytes(u64(RAM_IOVA)), EINVAL], // too short
      [9, Cmd.DMA_WRITE, bytes(u64(RAM_IOVA), u64(4), [1, 2]), EINVAL], // count says 4, 2 bytes came
      [10, Cmd.DMA_READ, bytes(u64(RAM_IOVA), u64(4), [0]), EINVAL], // a read with data after it
      [11, 99, bytes(), ENOSYS], // not a command at all
      [12, Cmd.REGION_READ, bytes(u64(0), u32(0), u32(4)), ENOSYS], // a client's command
    ];
    const { client, messages } = await openSession(
      [
        ...mapSteps,
        { op: "recv" },
        ...refusals.flatMap(([id, command, payload]) => serverRequest(id, command, payload)),
        { op: "reply", bytes: reply(Cmd.REGION_READ, bytes(u64(0), u32(0), u32(1), [0x42])) },
      ],
      { max_data_xfer_size: 4096 },
      { maxDataXferSize: 64 },
    );
    client.dmaMap(ram);
    client.dmaMap(rom);
    expect(client.read(0, 0, 1)).toEqual(bytes([0x42]));
    client.close();
    const answers = (await messages()).slice(3).map((m) => m.bytes);
    expect(answers).toEqual(refusals.map(([id, command, , errno]) => message(id, command, REPLY | ERROR, [], errno)));
    expect(ram.bytes).toEqual(ramBefore);
    expect(rom.bytes.every((b) => b === 0x77)).toBe(true);
  });

  it("does not answer a request marked no_reply", async () => {
    const { ram } = guestMemory();
    const { client, messages } = await openSession([
      { op: "recv" },
      { op: "reply", bytes: reply(Cmd.DMA_MAP) },
      { op: "recv" },
      { op: "send", bytes: message(5, Cmd.DMA_WRITE, COMMAND | NO_REPLY, bytes(u64(RAM_IOVA), u64(2), [9, 9])) },
      { op: "send", bytes: message(6, Cmd.DMA_READ, COMMAND | NO_REPLY, bytes(u64(0), u64(2))) },
      { op: "reply", bytes: reply(Cmd.REGION_READ, bytes(u64(0), u32(0), u32(1), [1])) },
      { op: "recv" },
      { op: "reply", bytes: reply(Cmd.REGION_READ, bytes(u64(0), u32(0), u32(1), [2])) },
    ]);
    client.dmaMap(ram);
    expect(client.read(0, 0, 1)).toEqual(bytes([1]));
    expect(client.read(0, 0, 1)).toEqual(bytes([2]));
    client.close();
    const sent = await messages();
    // DMA_MAP, read, read: nothing answered messages 5 and 6.
    expect(sent.map((m) => new DataView(m.bytes.buffer).getUint16(2, true))).toEqual([Cmd.DMA_MAP, Cmd.REGION_READ, Cmd.REGION_READ]);
    expect(ram.bytes.subarray(0, 2)).toEqual(bytes([9, 9]));
  });

  it("serves requests that come between calls from the readable watch", async () => {
    const { ram } = guestMemory();
    const { client, messages } = await openSession([
      { op: "recv" },
      { op: "reply", bytes: reply(Cmd.DMA_MAP) },
      { op: "sleep", ms: 50 },
      ...serverRequest(0x100, Cmd.DMA_WRITE, bytes(u64(RAM_IOVA + 8), u64(2), [0xfe, 0xed])),
      ...serverRequest(0x101, Cmd.DMA_READ, bytes(u64(RAM_IOVA + 8), u64(2))),
    ]);
    client.dmaMap(ram);
    // The main thread idles here: only the watch can answer.
    const deadline = Date.now() + 3000;
    while (ram.bytes[8] !== 0xfe && Date.now() < deadline) await sleep(10);
    const sent = (await messages()).map((m) => m.bytes);
    client.close();
    expect(sent[1]).toEqual(message(0x100, Cmd.DMA_WRITE, REPLY, bytes(u64(RAM_IOVA + 8), u64(2))));
    expect(sent[2]).toEqual(message(0x101, Cmd.DMA_READ, REPLY, bytes(u64(RAM_IOVA + 8), u64(2), [0xfe, 0xed])));
  });

  it("stops serving a region once DMA_UNMAP is answered, but serves it while the unmap waits", async () => {
    const { ram } = guestMemory();
    const { client, messages } = await openSession([
      { op: "recv" },
      { op: "reply", bytes: reply(Cmd.DMA_MAP) },
      { op: "recv" }, // the unmap
      ...serverRequest(1, Cmd.DMA_READ, bytes(u64(RAM_IOVA), u64(1))),
      { op: "reply", bytes: reply(Cmd.DMA_UNMAP, bytes(u32(24), u32(0), u64(RAM_IOVA), u64(0x2000))) },
      ...serverRequest(2, Cmd.DMA_READ, bytes(u64(RAM_IOVA), u64(1))),
    ]);
    client.dmaMap(ram);
    client.dmaUnmap(RAM_IOVA, 0x2000);
    const sent = (await messages()).map((m) => m.bytes);
    client.close();
    expect(sent[2]).toEqual(message(1, Cmd.DMA_READ, REPLY, bytes(u64(RAM_IOVA), u64(1), [0])));
    expect(sent[3]).toEqual(message(2, Cmd.DMA_READ, REPLY | ERROR, [], EFAULT));
  });
});
