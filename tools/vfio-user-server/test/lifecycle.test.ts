import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { hostIo } from "./support/gate.js";
import { CLI, type RunningServer, startServer } from "./support/server-process.js";
import { Bytes, CMD, message, regionWriteRequest } from "./support/wire.js";

let server: RunningServer | undefined;
const dirs: string[] = [];
afterEach(() => {
  server?.stop();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function scratchDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "vfio-user-server-life-"));
  dirs.push(dir);
  return dir;
}

function run(args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: 10_000 });
}

describe.skipIf(!hostIo.ok)("process lifecycle", () => {
  it("exits 0 when the client disconnects, and removes the socket file once a client is accepted", async () => {
    server = await startServer("nvme");
    expect(existsSync(server.path)).toBe(true);
    const client = server.connect();
    client.negotiate();
    expect(existsSync(server.path)).toBe(false);
    client.close();
    expect(await server.exited).toBe(0);
  });

  it("exits 0 when the client disconnects before the handshake", async () => {
    server = await startServer("intx-only");
    server.connect().close();
    expect(await server.exited).toBe(0);
  });

  it("exits 3 at once when CONTROL is written 0xDEAD0001, without a reply", async () => {
    server = await startServer("rtl8168");
    const client = server.connect();
    client.negotiate();
    client.write32(2, 0x83c, 0x12345678); // any other value is ignored
    client.send(message(5, CMD.REGION_WRITE, regionWriteRequest(2, 0x83c, new Bytes().u32(0xdead0001).done())));
    expect(client.closedByServer()).toBe(true);
    expect(await server.exited).toBe(3);
    client.close();
  });

  it("closes the connection and exits 2 on a header whose size cannot be framed", async () => {
    server = await startServer("intx-only");
    const client = server.connect();
    client.negotiate();
    client.send(new Bytes().u16(1).u16(CMD.REGION_READ).u32(8).u32(0).u32(0).done());
    expect(client.closedByServer()).toBe(true);
    expect(await server.exited).toBe(2);
    expect(server.stderr()).toMatch(/smaller than the 16-byte header/);
    client.close();
  });

  it("closes the connection on a message larger than any it accepts", async () => {
    server = await startServer("intx-only");
    const client = server.connect();
    client.send(new Bytes().u16(1).u16(CMD.VERSION).u32(0x7fffffff).u32(0).u32(0).done());
    expect(client.closedByServer()).toBe(true);
    expect(await server.exited).toBe(2);
    client.close();
  });

  it("takes a message that arrives a byte at a time", async () => {
    server = await startServer("intx-only");
    const client = server.connect();
    client.negotiate();
    const bytes = message(42, CMD.REGION_READ, new Bytes().u64(0).u32(0).u32(4).done());
    for (const b of bytes) client.send(Uint8Array.of(b));
    const reply = client.receive();
    expect(reply.id).toBe(42);
    client.close();
  });

  it("refuses to replace a path that is not a socket, or a live socket; replaces a stale one", async () => {
    const dir = scratchDir();
    const file = join(dir, "not-a-socket");
    writeFileSync(file, "keep me");
    const refused = run(["--socket", file, "--device", "nvme"]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/not a socket/);
    expect(readFileSync(file, "utf8")).toBe("keep me");

    const live = join(dir, "live");
    const listener = createServer();
    await new Promise<void>((resolve) => listener.listen(live, resolve));
    const busy = spawnSync(process.execPath, [CLI, "--socket", live, "--device", "nvme"], { encoding: "utf8", timeout: 10_000 });
    expect(busy.status).toBe(1);
    expect(busy.stderr).toMatch(/another server is listening/);
    // Closing a node server unlinks its socket; a stale socket file is what a killed server leaves behind.
    server = await startServer("nvme", [], join(dir, "first"));
    server.stop();
    await server.exited;
    expect(existsSync(join(dir, "first"))).toBe(true);
    server = await startServer("nvme", [], join(dir, "first"));
    const client = server.connect();
    client.negotiate();
    client.close();
    expect(await server.exited).toBe(0);
    await new Promise((resolve) => listener.close(resolve));
  });

  it("rejects bad options with a usage line and status 1", () => {
    for (const args of [[], ["--socket", "/tmp/x"], ["--socket", "/tmp/x", "--device", "e1000"], ["--socket", "/tmp/x", "--device", "nvme", "--dma", "maybe"], ["--bogus"]]) {
      const result = run(args);
      expect(result.status).toBe(1);
      expect(result.stderr).toMatch(/usage: vfio-user-server --socket PATH --device rtl8168\|nvme\|subpage-rom\|intx-only/);
    }
    expect(run(["--help"]).stdout).toMatch(/usage:/);
  });

  it("--log traces each message on stderr", async () => {
    server = await startServer("intx-only", ["--log"]);
    const client = server.connect();
    client.negotiate();
    client.read32(0, 0);
    client.close();
    expect(await server.exited).toBe(0);
    expect(server.stderr()).toMatch(/<- VERSION id=\d+/);
    expect(server.stderr()).toMatch(/<- REGION_READ id=\d+/);
  });
});
