import { spawn } from "node:child_process";
import { lstat, mkdir, readFile, writeFile } from "node:fs/promises";
import { connect, createServer, type Server } from "node:net";
import { join } from "node:path";
import { ConfigurationError } from "@vmm/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { UnixServerChannel } from "../src/backends/channel.js";
import { SocketNetBackend } from "../src/backends/net-socket.js";
import { tempDirEach } from "./temp-dir.js";

/** The two backends that listen on a path: the console server and virtio-net's listen role (explicit and auto). */
const listeners: [string, (path: string) => Promise<{ close(): Promise<void> }>, { connectsToLive: boolean }][] = [
  ["virtio-console socket", (path) => UnixServerChannel.listen(path), { connectsToLive: false }],
  ["virtio-net socket, role=listen", (path) => SocketNetBackend.open(path, "listen"), { connectsToLive: false }],
  ["virtio-net socket, role=auto", (path) => SocketNetBackend.open(path, "auto"), { connectsToLive: true }],
];

/** Leaves a socket file nobody listens on: a node process listens, then dies by SIGKILL (no cleanup). */
async function staleSocket(path: string): Promise<void> {
  const child = spawn(process.execPath, ["-e", `require("net").createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, "SIGKILL"))`]);
  await new Promise((r) => child.once("exit", r));
  expect((await lstat(path)).isSocket()).toBe(true);
}

function accepts(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

async function failure(p: Promise<unknown>): Promise<Error> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(ConfigurationError);
  return e as Error;
}

describe.each(listeners)("%s: what may be at the path", (_name, listen, { connectsToLive }) => {
  const inDir = tempDirEach("vmm-listen-");

  it("a regular file is left alone and the error names the path", async () => {
    const path = inDir("precious.txt");
    await writeFile(path, "do not delete me");
    const error = await failure(listen(path));
    expect(error.message).toContain(path);
    expect(error.message).toMatch(/regular file/);
    expect(await readFile(path, "utf8")).toBe("do not delete me");
  });

  it("a directory is left alone", async () => {
    const path = inDir("sub");
    await mkdir(path);
    await writeFile(join(path, "inside"), "x");
    expect((await failure(listen(path))).message).toMatch(/directory/);
    expect(await readFile(join(path, "inside"), "utf8")).toBe("x");
  });

  it("a live listening socket is not hijacked", async () => {
    const path = inDir("live.sock");
    const owner: Server = createServer();
    let connections = 0;
    owner.on("connection", (s) => {
      connections++;
      s.destroy();
    });
    await new Promise<void>((r) => owner.listen(path, r));
    try {
      if (connectsToLive) {
        // auto connects to a live peer instead of listening: that is its job, and the socket stays the owner's.
        await (await listen(path)).close();
      } else {
        const error = await failure(listen(path));
        expect(error.message).toContain(path);
        expect(error.message).toMatch(/another process is listening/);
      }
      const before = connections;
      expect(await accepts(path)).toBe(true);
      await new Promise((r) => setTimeout(r, 20));
      expect(connections).toBe(before + 1); // still the owner's socket
    } finally {
      await new Promise((r) => owner.close(r));
    }
  });

  it("a stale socket left by a dead process is replaced", async () => {
    const path = inDir("stale.sock");
    await staleSocket(path);
    expect(await accepts(path)).toBe(false);
    const b = await listen(path);
    try {
      expect(await accepts(path)).toBe(true);
    } finally {
      await b.close();
    }
  });
});
