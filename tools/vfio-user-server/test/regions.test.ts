import { closeSync, fstatSync } from "node:fs";
import { mapFd } from "@vmm/host-io";
import { afterEach, describe, expect, it } from "vitest";
import type { RawClient } from "./support/client.js";
import { hostIo } from "./support/gate.js";
import { type RunningServer, startServer } from "./support/server-process.js";
import { CMD, EINVAL, le, le64, regionInfoRequest, regionReadRequest, regionWriteRequest } from "./support/wire.js";

let server: RunningServer | undefined;
afterEach(() => server?.stop());

const R = 1;
const W = 2;
const MMAP = 4;
const CAPS = 8;

interface Info {
  argsz: number;
  flags: number;
  index: number;
  capOffset: number;
  size: bigint;
  offset: bigint;
  areas?: { offset: bigint; size: bigint }[];
  fds: number[];
  length: number;
}

function regionInfo(client: RawClient, index: number, argsz = 256): Info {
  const reply = client.ok(CMD.GET_REGION_INFO, regionInfoRequest(index, argsz));
  const p = reply.payload;
  const info: Info = {
    argsz: le(p, 0, 4),
    flags: le(p, 4, 4),
    index: le(p, 8, 4),
    capOffset: le(p, 12, 4),
    size: le64(p, 16),
    offset: le64(p, 24),
    fds: reply.fds,
    length: p.length,
  };
  if (info.capOffset) {
    const cap = info.capOffset;
    expect([le(p, cap, 2), le(p, cap + 2, 2), le(p, cap + 4, 4)]).toEqual([1, 1, 0]); // SPARSE_MMAP, version 1, last
    const count = le(p, cap + 8, 4);
    info.areas = Array.from({ length: count }, (_, i) => ({ offset: le64(p, cap + 16 + 16 * i), size: le64(p, cap + 24 + 16 * i) }));
  }
  return info;
}

describe.skipIf(!hostIo.ok)("DEVICE_GET_REGION_INFO", () => {
  it("describes every rtl8168 region; BAR4 is mmappable except its MSI-X page, with a sparse-mmap capability and an fd", async () => {
    server = await startServer("rtl8168");
    const client = server.connect();
    client.negotiate();
    const expected: [number, number, bigint][] = [
      [0, R | W, 256n],
      [1, 0, 0n],
      [2, R | W, 0x1000n],
      [3, 0, 0n],
      [5, 0, 0n],
      [6, 0, 0n],
      [7, R | W, 4096n],
      [8, 0, 0n],
    ];
    for (const [index, flags, size] of expected) {
      const info = regionInfo(client, index);
      expect({ index: info.index, flags: info.flags, size: info.size, fds: info.fds.length, argsz: info.argsz }).toEqual({ index, flags, size, fds: 0, argsz: 32 });
    }
    const bar4 = regionInfo(client, 4);
    expect(bar4).toMatchObject({ argsz: 64, length: 64, flags: R | W | MMAP | CAPS, index: 4, capOffset: 32, size: 0x4000n, offset: 0n });
    expect(bar4.areas).toEqual([{ offset: 0x1000n, size: 0x3000n }]);
    expect(bar4.fds).toHaveLength(1);
    expect(fstatSync(bar4.fds[0]!).size).toBeGreaterThanOrEqual(0x4000);

    // What the client writes through its mapping the server sees, and the other way round.
    const mapping = mapFd(bar4.fds[0]!, 0x1000, 0x3000, { writable: true });
    closeSync(bar4.fds[0]!);
    mapping.set([0xde, 0xad, 0xbe, 0xef], 0x10);
    expect([...client.read(4, 0x1010, 4)]).toEqual([0xde, 0xad, 0xbe, 0xef]);
    client.write(4, 0x2ffc, new Uint8Array([1, 2, 3, 4]));
    expect([...mapping.subarray(0x1ffc, 0x2000)]).toEqual([1, 2, 3, 4]);
    expect(client.errno(CMD.GET_REGION_INFO, regionInfoRequest(9))).toBe(EINVAL);
    client.close();
  });

  it("answers a too-small argsz with the size needed and the base structure only", async () => {
    server = await startServer("rtl8168");
    const client = server.connect();
    client.negotiate();
    const short = regionInfo(client, 4, 32);
    expect(short).toMatchObject({ argsz: 64, length: 32, flags: R | W | MMAP | CAPS, capOffset: 0, size: 0x4000n });
    short.fds.forEach((fd) => closeSync(fd));
    expect(client.errno(CMD.GET_REGION_INFO, regionInfoRequest(4, 16))).toBe(EINVAL);
    expect(client.errno(CMD.GET_REGION_INFO, regionInfoRequest(4).subarray(0, 12))).toBe(EINVAL);
    client.close();
  });

  it("offers nvme BAR0's register page and all of BAR3 for mmap, the engine and MSI-X pages not", async () => {
    server = await startServer("nvme");
    const client = server.connect();
    client.negotiate();
    const bar0 = regionInfo(client, 0);
    expect(bar0).toMatchObject({ flags: R | W | MMAP | CAPS, size: 0x4000n });
    expect(bar0.areas).toEqual([{ offset: 0n, size: 0x1000n }]);
    const bar3 = regionInfo(client, 3);
    expect(bar3).toMatchObject({ flags: R | W | MMAP, size: 0x100000n, capOffset: 0, argsz: 32 });
    expect(bar3.fds).toHaveLength(1);
    for (const index of [1, 2, 4, 5, 6]) expect(regionInfo(client, index).size).toBe(0n);

    // BAR0's first page holds NVMe registers (CAP, VS) the client can read through its mapping.
    const regs = mapFd(bar0.fds[0]!, 0, 0x1000);
    expect(new DataView(regs.buffer, regs.byteOffset).getUint32(8, true)).toBe(0x00010400);
    const cmb = mapFd(bar3.fds[0]!, 0, 0x100000, { writable: true });
    cmb[0xfffff] = 0x5a;
    expect(client.read(3, 0xfffff, 1)[0]).toBe(0x5a);
    [...bar0.fds, ...bar3.fds].forEach((fd) => closeSync(fd));
    client.close();
  });

  it("does not offer mmap to a client that takes no fds", async () => {
    server = await startServer("nvme");
    const client = server.connect();
    client.negotiate('{"capabilities":{"max_msg_fds":0}}');
    const bar0 = regionInfo(client, 0);
    expect(bar0).toMatchObject({ flags: R | W, capOffset: 0, argsz: 32, fds: [] });
    expect(regionInfo(client, 3)).toMatchObject({ flags: R | W, fds: [] });
    client.close();
  });

  it("describes subpage-rom: a 256-byte trapped BAR0, a 64-byte I/O BAR1, a read-only 64 KiB ROM, 256 bytes of config", async () => {
    server = await startServer("subpage-rom");
    const client = server.connect();
    client.negotiate();
    expect(regionInfo(client, 0)).toMatchObject({ flags: R | W, size: 256n, fds: [] });
    expect(regionInfo(client, 1)).toMatchObject({ flags: R | W, size: 64n, fds: [] });
    expect(regionInfo(client, 6)).toMatchObject({ flags: R, size: 0x10000n, fds: [] });
    expect(regionInfo(client, 7)).toMatchObject({ flags: R | W, size: 256n });
    client.close();
  });
});

describe.skipIf(!hostIo.ok)("REGION_READ / REGION_WRITE", () => {
  it("bounds-checks every access and keeps the ROM read-only", async () => {
    server = await startServer("subpage-rom");
    const client = server.connect();
    client.negotiate();
    expect(client.errno(CMD.REGION_READ, regionReadRequest(0, 0xfd, 4))).toBe(EINVAL);
    expect(client.errno(CMD.REGION_READ, regionReadRequest(7, 0x100, 4))).toBe(EINVAL);
    expect(client.errno(CMD.REGION_READ, regionReadRequest(2, 0, 4))).toBe(EINVAL);
    expect(client.errno(CMD.REGION_READ, regionReadRequest(9, 0, 4))).toBe(EINVAL);
    expect(client.errno(CMD.REGION_READ, regionReadRequest(6, 0, 0x100001))).toBe(EINVAL);
    expect(client.errno(CMD.REGION_READ, regionReadRequest(0, 0, 4).subarray(0, 12))).toBe(EINVAL);
    expect(client.errno(CMD.REGION_WRITE, regionWriteRequest(6, 0, new Uint8Array([1])))).toBe(EINVAL);
    // count says 4, 3 data bytes came.
    expect(client.errno(CMD.REGION_WRITE, regionWriteRequest(0, 0, new Uint8Array([1, 2, 3, 4])).subarray(0, 19))).toBe(EINVAL);
    expect(client.errno(CMD.REGION_WRITE, regionWriteRequest(0, 0xfc, new Uint8Array(8)))).toBe(EINVAL);
    // A huge offset is refused, not wrapped.
    const far = regionReadRequest(0, 0, 4);
    far.set([0, 0, 0, 0, 0, 0, 0, 0x80], 0);
    expect(client.errno(CMD.REGION_READ, far)).toBe(EINVAL);
    // Zero bytes are fine.
    expect(client.read(0, 0x100, 0)).toHaveLength(0);
    client.close();
  });

  it("echoes offset, region and count in the replies", async () => {
    server = await startServer("intx-only");
    const client = server.connect();
    client.negotiate();
    const w = client.ok(CMD.REGION_WRITE, regionWriteRequest(0, 0x100, new Uint8Array([9, 8, 7])));
    expect([...w.payload]).toEqual([0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0]);
    const r = client.ok(CMD.REGION_READ, regionReadRequest(0, 0x100, 3));
    expect([...r.payload]).toEqual([0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 9, 8, 7]);
    client.close();
  });
});
