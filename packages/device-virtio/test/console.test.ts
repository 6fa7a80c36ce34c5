import { mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { type ByteChannel, StreamChannel, UnixServerChannel } from "../src/backends/channel.js";
import { VirtioConsole } from "../src/devices/console.js";
import { setupTransport, until } from "./harness.js";

const text = (s: string) => new TextEncoder().encode(s);

function consoleVm(channel: ByteChannel = new StreamChannel(new PassThrough(), new PassThrough())) {
  const device = new VirtioConsole(channel);
  const t = setupTransport(device);
  return { ...t, device };
}

describe("virtio-console", () => {
  it("writes guest output from the transmit queue to the host stream", () => {
    const output = new PassThrough();
    const v = consoleVm(new StreamChannel(new PassThrough(), output));
    v.driver.init();
    const buf = v.alloc.alloc(16);
    v.mem.write(buf, text("hello, host\n"));
    v.driver.rings[1]!.post([{ addr: buf, len: 12 }]);
    v.driver.kick(1);
    expect(output.read()?.toString()).toBe("hello, host\n");
    expect(v.driver.rings[1]!.takeUsed()).toEqual([{ id: 0, len: 0 }]);
  });

  it("buffers host input until the guest posts receive buffers, and splits it across them", async () => {
    const input = new PassThrough();
    const v = consoleVm(new StreamChannel(input, new PassThrough()));
    input.write("early bytes|");
    await until(() => v.device.buffered === 12);
    v.driver.init();
    const rx = v.driver.rings[0]!;
    const a = v.alloc.alloc(8);
    const b = v.alloc.alloc(8);
    const c = v.alloc.alloc(8);
    rx.post([{ addr: a, len: 8, write: true }]);
    rx.post([{ addr: b, len: 8, write: true }]);
    rx.post([{ addr: c, len: 8, write: true }]);
    v.driver.kick(0);
    expect(rx.takeUsed()).toEqual([
      { id: 0, len: 8 },
      { id: 1, len: 4 },
    ]); // the third buffer stays posted for later input
    expect(new TextDecoder().decode(v.mem.view(a, 8)) + new TextDecoder().decode(v.mem.view(b, 4))).toBe("early bytes|");
    input.write("x");
    await until(() => rx.usedIdx() === 3);
    expect(v.mem.readU8(c)).toBe("x".charCodeAt(0));
  });

  it("serves a client on a Unix socket path", async () => {
    const dir = await mkdtemp(join(tmpdir(), "vmm-con-"));
    const path = join(dir, "console.sock");
    const channel = await UnixServerChannel.listen(path);
    const v = consoleVm(channel);
    v.driver.init();
    const client = connect(path);
    await new Promise((r) => client.once("connect", r));
    const received: Buffer[] = [];
    client.on("data", (d) => received.push(d));
    const rxBuf = v.alloc.alloc(64);
    v.driver.rings[0]!.post([{ addr: rxBuf, len: 64, write: true }]);
    v.driver.kick(0);
    client.write("ls\n");
    await until(() => v.driver.rings[0]!.usedIdx() === 1);
    expect(new TextDecoder().decode(v.mem.view(rxBuf, 3))).toBe("ls\n");
    const txBuf = v.alloc.alloc(8);
    v.mem.write(txBuf, text("ok\n"));
    v.driver.rings[1]!.post([{ addr: txBuf, len: 3 }]);
    v.driver.kick(1);
    await until(() => Buffer.concat(received).toString() === "ok\n");
    client.destroy();
    await v.device.close();
    await rm(dir, { recursive: true, force: true });
  });
});
