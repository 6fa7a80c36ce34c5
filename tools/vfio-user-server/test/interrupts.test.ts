import { closeSync } from "node:fs";
import { EventFd, memfdCreate } from "@vmm/host-io";
import { afterEach, describe, expect, it } from "vitest";
import type { RawClient } from "./support/client.js";
import { hostIo } from "./support/gate.js";
import { type RunningServer, startServer } from "./support/server-process.js";
import { CMD, EINVAL, IRQ, SET, setIrqsRequest } from "./support/wire.js";

let server: RunningServer | undefined;
const eventfds: EventFd[] = [];
afterEach(() => {
  server?.stop();
  for (const e of eventfds.splice(0)) e.close();
});

const ENOTSUP = 95;

function fresh(n: number): EventFd[] {
  const made = Array.from({ length: n }, () => new EventFd());
  eventfds.push(...made);
  return made;
}

/** Which eventfds were signalled since the last look (reading resets them). */
function signalled(fds: EventFd[]): number[] {
  return fds.flatMap((e, i) => (e.read() !== null ? [i] : []));
}

async function connected(device: string): Promise<RawClient> {
  server = await startServer(device);
  const client = server.connect();
  client.negotiate();
  return client;
}

const CONFIG = 7;

describe.skipIf(!hostIo.ok)("interrupts", () => {
  it("reports the IRQ types: INTx maskable and automasked, MSI and MSI-X by vector count", async () => {
    const client = await connected("nvme");
    const info = (index: number) => {
      const p = client.ok(CMD.GET_IRQ_INFO, new Uint8Array([16, 0, 0, 0, 0, 0, 0, 0, index, 0, 0, 0, 0, 0, 0, 0])).payload;
      return [p[4], p[12]];
    };
    expect(info(IRQ.INTX)).toEqual([0x7, 1]);
    expect(info(IRQ.MSI)).toEqual([0x9, 8]);
    expect(info(IRQ.MSIX)).toEqual([0x1, 8]);
    expect(client.errno(CMD.GET_IRQ_INFO, new Uint8Array([16, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0]))).toBe(EINVAL);
    expect(client.errno(CMD.GET_IRQ_INFO, new Uint8Array([8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]))).toBe(EINVAL);
    client.close();
  });

  it("MSI-X: the engine signals vector VECTOR's eventfd before answering the doorbell", async () => {
    const client = await connected("rtl8168");
    const fds = fresh(4);
    client.ok(CMD.SET_IRQS, setIrqsRequest(SET.EVENTFD | SET.TRIGGER, IRQ.MSIX, 0, 4), fds.map((e) => e.fd));
    client.write32(2, 0x824, 2);
    client.write32(2, 0x828, 2);
    expect(signalled(fds)).toEqual([2]);
    // An interrupt-only doorbell is no operation: STATUS shows the interrupt, COUNT stays.
    expect([client.read32(2, 0x82c), client.read32(2, 0x830), client.read32(2, 0x834)]).toEqual([4, 0, 1]);
    // DMA + interrupt with a bad LEN fails before the interrupt: ERROR, nothing signalled.
    client.write32(2, 0x82c, 7);
    client.write32(2, 0x824, 3);
    client.write32(2, 0x828, 1);
    expect(signalled(fds)).toEqual([]);
    expect([client.read32(2, 0x82c), client.read32(2, 0x834)]).toEqual([2, 1]);
    // A vector past the table raises nothing.
    client.write32(2, 0x824, 9);
    client.write32(2, 0x828, 2);
    expect(signalled(fds)).toEqual([]);
    client.close();
  });

  it("MSI-X: assigning a vector an eventfd programs its own table entry as a host kernel would; taking it away masks it", async () => {
    const client = await connected("rtl8168");
    const entry = (v: number) => [0, 4, 8, 12].map((o) => client.read32(4, 16 * v + o));
    // After reset every entry is masked with a zero message.
    expect(entry(0)).toEqual([0, 0, 0, 1]);
    const fds = fresh(4);
    client.ok(CMD.SET_IRQS, setIrqsRequest(SET.EVENTFD | SET.TRIGGER, IRQ.MSIX, 0, 4), fds.map((e) => e.fd));
    for (let v = 0; v < 4; v++) expect(entry(v)).toEqual([0xfee00000, 0, 0x4000 + v, 0]);
    // A reset keeps the host's entries of the vectors it has set up (the kernel restores them).
    client.write32(4, 1 * 16 + 8, 0x99);
    client.ok(CMD.RESET, new Uint8Array(0));
    expect(entry(1)).toEqual([0xfee00000, 0, 0x4001, 0]);
    // Deassigning vector 0 masks its entry; assigning it again programs it again.
    client.ok(CMD.SET_IRQS, setIrqsRequest(SET.EVENTFD | SET.TRIGGER, IRQ.MSIX, 0, 1));
    expect(entry(0)).toEqual([0xfee00000, 0, 0x4000, 1]);
    client.ok(CMD.SET_IRQS, setIrqsRequest(SET.EVENTFD | SET.TRIGGER, IRQ.MSIX, 0, 1), [fds[0]!.fd]);
    expect(entry(0)).toEqual([0xfee00000, 0, 0x4000, 0]);
    // Disabling the index masks every entry.
    client.ok(CMD.SET_IRQS, setIrqsRequest(SET.NONE | SET.TRIGGER, IRQ.MSIX, 0, 0));
    for (let v = 0; v < 4; v++) expect(entry(v)[3]).toBe(1);
    client.close();
  });

  it("rtl8168 back door: the device masks and unmasks by its own table, which the back door changes", async () => {
    const client = await connected("rtl8168");
    const fds = fresh(4);
    client.ok(CMD.SET_IRQS, setIrqsRequest(SET.EVENTFD | SET.TRIGGER, IRQ.MSIX, 0, 4), fds.map((e) => e.fd));
    const MSIX = 0x10000; // the address register's target field (bits 30:16) = 1: the MSI-X table
    const control = 1 * 16 + 12; // vector 1's vector control dword
    // Mask vector 1 through the back door: data, then the address with bit 31 (write).
    client.write32(2, 0x70, 1);
    client.write32(2, 0x74, 0x80000000 | MSIX | control);
    expect(client.read32(2, 0x74)).toBe(MSIX | control); // the flag reads clear once done
    expect(client.read32(4, control)).toBe(1); // the device's own table, as BAR4 shows it
    client.write32(2, 0x824, 1);
    client.write32(2, 0x828, 2);
    expect(signalled(fds)).toEqual([]);
    expect(client.read32(4, 0x800) & 0x2).toBe(0x2); // pending
    // Unmask: the pending vector goes out.
    client.write32(2, 0x70, 0);
    client.write32(2, 0x74, 0x80000000 | MSIX | control);
    expect(signalled(fds)).toEqual([1]);
    expect(client.read32(4, 0x800)).toBe(0);
    // A back-door read: address without bit 31 loads the dword into 0x70 and sets the flag.
    client.write32(2, 0x70, 0);
    client.write32(2, 0x74, MSIX | 0x28);
    expect([client.read32(2, 0x70), client.read32(2, 0x74)]).toEqual([0x4002, (0x80000000 | MSIX | 0x28) >>> 0]);
    // The I/O BAR aliases the same registers.
    expect(client.read32(0, 0x70)).toBe(0x4002);
    // A message written through the back door is not the host's: vector 3's interrupt goes astray.
    client.write32(2, 0x70, 0xfee01000);
    client.write32(2, 0x74, 0x80000000 | MSIX | 0x30);
    expect(client.read32(4, 0x30)).toBe(0xfee01000);
    const raised = client.read32(2, 0x834);
    client.write32(2, 0x824, 3);
    client.write32(2, 0x828, 2);
    expect(signalled(fds)).toEqual([]);
    expect(client.read32(2, 0x834)).toBe(raised + 1); // the device raised it
    expect(client.read32(4, 0x800)).toBe(0); // not pending either: sent, nowhere
    // The host programs the entry again when the client gives the vector its eventfd again.
    const [again] = fresh(1);
    client.ok(CMD.SET_IRQS, setIrqsRequest(SET.EVENTFD | SET.TRIGGER, IRQ.MSIX, 3, 1), [again!.fd]);
    client.write32(2, 0x828, 2);
    expect(signalled([again!])).toEqual([0]);
    // Another target than the MSI-X table reaches nothing modelled here; the request still completes.
    client.write32(2, 0x70, 0x12345678);
    client.write32(2, 0x74, 0x80000000 | 0x20000 | 0x20);
    expect([client.read32(2, 0x74), client.read32(4, 0x20)]).toEqual([0x20000 | 0x20, 0xfee00000]);
    client.write32(2, 0x74, 0x20000 | 0x20);
    expect([client.read32(2, 0x70), client.read32(2, 0x74)]).toEqual([0, (0x80000000 | 0x20000 | 0x20) >>> 0]);
    // Writes the client forwards to the table page reach the same copy.
    client.write32(4, 2 * 16 + 12, 1);
    client.write32(2, 0x824, 2);
    client.write32(2, 0x828, 2);
    expect(signalled(fds)).toEqual([]);
    client.write32(4, 2 * 16 + 12, 0);
    expect(signalled(fds)).toEqual([2]);
    // The function mask in config space masks every vector; clearing it delivers what is pending.
    client.write(CONFIG, 0xb3, new Uint8Array([0x40]));
    client.write32(2, 0x824, 0);
    client.write32(2, 0x828, 2);
    expect(signalled(fds)).toEqual([]);
    client.write(CONFIG, 0xb3, new Uint8Array([0x00]));
    expect(signalled(fds)).toEqual([0]);
    client.close();
  });

  it("MSI: vector VECTOR of the enabled ones, held pending while its mask bit is set", async () => {
    const client = await connected("nvme");
    const fds = fresh(2);
    client.ok(CMD.SET_IRQS, setIrqsRequest(SET.EVENTFD | SET.TRIGGER, IRQ.MSI, 0, 2), fds.map((e) => e.fd));
    client.write32(0, 0x1024, 1);
    client.write32(0, 0x1028, 2);
    expect(signalled(fds)).toEqual([1]);
    client.write32(CONFIG, 0x80 + 0x10, 0x2); // mask vector 1
    client.write32(0, 0x1028, 2);
    expect(signalled(fds)).toEqual([]);
    expect(client.read32(CONFIG, 0x80 + 0x14)).toBe(0x2);
    client.write32(CONFIG, 0x80 + 0x10, 0);
    expect(signalled(fds)).toEqual([1]);
    expect(client.read32(CONFIG, 0x80 + 0x14)).toBe(0);
    // A vector beyond the enabled ones reaches no eventfd.
    client.write32(0, 0x1024, 5);
    client.write32(0, 0x1028, 2);
    expect(signalled(fds)).toEqual([]);
    // MSI-X eventfds take precedence over MSI; disabling them (count 0) falls back to MSI.
    const msix = fresh(1);
    client.ok(CMD.SET_IRQS, setIrqsRequest(SET.EVENTFD | SET.TRIGGER, IRQ.MSIX, 0, 1), [msix[0]!.fd]);
    client.write32(0, 0x1024, 0);
    client.write32(0, 0x1028, 2);
    expect([signalled(msix), signalled(fds)]).toEqual([[0], []]);
    client.ok(CMD.SET_IRQS, setIrqsRequest(SET.NONE | SET.TRIGGER, IRQ.MSIX, 0, 0));
    client.write32(0, 0x1028, 2);
    expect([signalled(msix), signalled(fds)]).toEqual([[], [0]]);
    client.close();
  });

  it("INTx: level-triggered with automask; UNMASK re-signals while the line is asserted; clearing STATUS bit 2 deasserts", async () => {
    const client = await connected("intx-only");
    const [intx] = fresh(1);
    const line = () => (client.read32(0, 0x2c) & 4) !== 0;
    const interruptStatus = () => (client.read32(CONFIG, 4) >>> 16) & 0x8;
    client.ok(CMD.SET_IRQS, setIrqsRequest(SET.EVENTFD | SET.TRIGGER, IRQ.INTX, 0, 1), [intx!.fd]);
    client.write32(0, 0x28, 2);
    expect(signalled([intx!])).toEqual([0]);
    expect([line(), interruptStatus()]).toEqual([true, 8]);
    // Automasked: another interrupt while masked is not signalled.
    client.write32(0, 0x28, 2);
    expect(signalled([intx!])).toEqual([]);
    // Unmask with the line still asserted: signalled again (and masked again).
    client.ok(CMD.SET_IRQS, setIrqsRequest(SET.NONE | SET.UNMASK, IRQ.INTX, 0, 1));
    expect(signalled([intx!])).toEqual([0]);
    client.ok(CMD.SET_IRQS, setIrqsRequest(SET.NONE | SET.UNMASK, IRQ.INTX, 0, 1));
    expect(signalled([intx!])).toEqual([0]);
    // The guest clears STATUS bit 2: the line drops; an unmask now signals nothing.
    client.write32(0, 0x2c, 4);
    expect([line(), interruptStatus()]).toEqual([false, 0]);
    client.ok(CMD.SET_IRQS, setIrqsRequest(SET.NONE | SET.UNMASK, IRQ.INTX, 0, 1));
    expect(signalled([intx!])).toEqual([]);
    client.write32(0, 0x28, 2);
    expect(signalled([intx!])).toEqual([0]);
    client.write32(0, 0x2c, 4);
    client.ok(CMD.SET_IRQS, setIrqsRequest(SET.BOOL | SET.UNMASK, IRQ.INTX, 0, 1, [1]));
    // An explicit MASK holds the next interrupt back until UNMASK.
    client.ok(CMD.SET_IRQS, setIrqsRequest(SET.BOOL | SET.MASK, IRQ.INTX, 0, 1, [1]));
    client.write32(0, 0x28, 2);
    expect(signalled([intx!])).toEqual([]);
    client.ok(CMD.SET_IRQS, setIrqsRequest(SET.NONE | SET.UNMASK, IRQ.INTX, 0, 1));
    expect(signalled([intx!])).toEqual([0]);
    expect(client.read32(0, 0x34)).toBe(4);
    // INTx Disable in the command register holds the line (Interrupt Status still shows it) until it clears.
    client.write32(0, 0x2c, 4);
    client.ok(CMD.SET_IRQS, setIrqsRequest(SET.NONE | SET.UNMASK, IRQ.INTX, 0, 1));
    client.write(CONFIG, 4, new Uint8Array([0x02, 0x04]));
    client.write32(0, 0x28, 2);
    expect([signalled([intx!]), line(), interruptStatus()]).toEqual([[], true, 8]);
    client.write(CONFIG, 4, new Uint8Array([0x02, 0x00]));
    expect(signalled([intx!])).toEqual([0]);
    client.close();
  });

  it("INTx: an asserted line is signalled once the eventfd arrives; mask and unmask eventfds are refused with ENOTSUP", async () => {
    const client = await connected("subpage-rom");
    const [intx, unmask] = fresh(2);
    client.write32(0, 0x40 + 0x28, 2);
    expect(client.read32(0, 0x40 + 0x2c) & 4).toBe(4);
    expect(client.errno(CMD.SET_IRQS, setIrqsRequest(SET.EVENTFD | SET.UNMASK, IRQ.INTX, 0, 1), [unmask!.fd])).toBe(ENOTSUP);
    expect(client.errno(CMD.SET_IRQS, setIrqsRequest(SET.EVENTFD | SET.MASK, IRQ.INTX, 0, 1), [unmask!.fd])).toBe(ENOTSUP);
    client.ok(CMD.SET_IRQS, setIrqsRequest(SET.EVENTFD | SET.TRIGGER, IRQ.INTX, 0, 1), [intx!.fd]);
    expect(signalled([intx!])).toEqual([0]); // asserted before it had an eventfd: signalled now, then automasked
    client.ok(CMD.SET_IRQS, setIrqsRequest(SET.NONE | SET.UNMASK, IRQ.INTX, 0, 1));
    expect(signalled([intx!])).toEqual([0]); // unmasked while still asserted: signalled again
    client.close();
  });

  it("client-side triggers signal the chosen eventfds; deassigning and disabling stop them", async () => {
    const client = await connected("rtl8168");
    const fds = fresh(4);
    client.ok(CMD.SET_IRQS, setIrqsRequest(SET.EVENTFD | SET.TRIGGER, IRQ.MSIX, 0, 4), fds.map((e) => e.fd));
    client.ok(CMD.SET_IRQS, setIrqsRequest(SET.BOOL | SET.TRIGGER, IRQ.MSIX, 0, 4, [0, 1, 0, 1]));
    expect(signalled(fds)).toEqual([1, 3]);
    client.ok(CMD.SET_IRQS, setIrqsRequest(SET.NONE | SET.TRIGGER, IRQ.MSIX, 2, 2));
    expect(signalled(fds)).toEqual([2, 3]);
    client.ok(CMD.SET_IRQS, setIrqsRequest(SET.EVENTFD | SET.TRIGGER, IRQ.MSIX, 1, 2)); // no fds: deassign 1 and 2
    client.ok(CMD.SET_IRQS, setIrqsRequest(SET.NONE | SET.TRIGGER, IRQ.MSIX, 0, 4));
    expect(signalled(fds)).toEqual([0, 3]);
    client.ok(CMD.SET_IRQS, setIrqsRequest(SET.NONE | SET.TRIGGER, IRQ.MSIX, 0, 0));
    client.ok(CMD.SET_IRQS, setIrqsRequest(SET.NONE | SET.TRIGGER, IRQ.MSIX, 0, 4));
    expect(signalled(fds)).toEqual([]);
    client.close();
  });

  it("refuses malformed SET_IRQS requests with EINVAL", async () => {
    const client = await connected("rtl8168");
    const fds = fresh(17);
    const memfd = memfdCreate("not-an-eventfd");
    const bad: [Uint8Array, number[]][] = [
      [setIrqsRequest(SET.NONE | SET.MASK, IRQ.MSIX, 0, 1), []],
      [setIrqsRequest(SET.NONE | SET.UNMASK, IRQ.MSI, 0, 1), []],
      [setIrqsRequest(SET.NONE | SET.TRIGGER, IRQ.MSIX, 3, 2), []],
      [setIrqsRequest(SET.NONE | SET.TRIGGER, IRQ.MSI, 0, 2), []],
      [setIrqsRequest(SET.NONE | SET.TRIGGER, 3, 0, 1), []],
      [setIrqsRequest(SET.NONE | SET.BOOL | SET.TRIGGER, IRQ.MSIX, 0, 1), []],
      [setIrqsRequest(SET.NONE | SET.MASK | SET.TRIGGER, IRQ.INTX, 0, 1), []],
      [setIrqsRequest(SET.NONE, IRQ.INTX, 0, 1), []],
      [setIrqsRequest(SET.NONE | SET.TRIGGER | 0x40, IRQ.INTX, 0, 1), []],
      [setIrqsRequest(SET.BOOL | SET.TRIGGER, IRQ.MSIX, 0, 4, [1, 1]), []],
      [setIrqsRequest(SET.EVENTFD | SET.TRIGGER, IRQ.MSIX, 0, 3), fds.slice(0, 2).map((e) => e.fd)],
      [setIrqsRequest(SET.EVENTFD | SET.TRIGGER, IRQ.MSIX, 0, 1), [memfd]],
      [setIrqsRequest(SET.NONE | SET.TRIGGER, IRQ.INTX, 0, 1), [fds[0]!.fd]],
      [setIrqsRequest(SET.EVENTFD | SET.MASK, IRQ.INTX, 0, 1), fds.slice(0, 2).map((e) => e.fd)],
      [setIrqsRequest(SET.NONE | SET.MASK, IRQ.INTX, 0, 0), []],
      [setIrqsRequest(SET.EVENTFD | SET.TRIGGER, IRQ.MSIX, 0, 17), fds.map((e) => e.fd)],
      [setIrqsRequest(SET.NONE | SET.TRIGGER, IRQ.INTX, 0, 1).subarray(0, 16), []],
    ];
    for (const [payload, passing] of bad) expect(client.errno(CMD.SET_IRQS, payload, passing)).toBe(EINVAL);
    closeSync(memfd);
    client.close();
  });
});
