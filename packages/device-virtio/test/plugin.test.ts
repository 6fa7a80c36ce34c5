import { writeFile } from "node:fs/promises";
import { assertPlugin, ConfigurationError, type DeviceType, PluginError, Tokens } from "@vmm/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import * as pkg from "../src/index.js";
import plugin from "../src/plugin.js";
import { VirtioPciFunction } from "../src/transport/virtio-pci.js";
import { createPluginDevice as create, vmContainer } from "./plugin-devices.js";
import { closeMemfds, makeMemfdMemory } from "./memfd-ram.js";
import { tempDirEach } from "./temp-dir.js";

describe("virtio plugin", () => {
  const inDir = tempDirEach("vmm-plugin-");

  it("is a valid plugin, exported as default and as virtioPlugin, registering the four device types", async () => {
    expect(assertPlugin({ default: plugin }, "@vmm/device-virtio")).toBe(plugin);
    expect(pkg.virtioPlugin).toBe(plugin);
    const c = vmContainer();
    await plugin.register(c, {});
    const types = c.resolveAll<DeviceType>(Tokens.DeviceType);
    expect(types.map((t) => t.type).sort()).toEqual(["virtio-blk", "virtio-console", "virtio-net", "virtio-rng"]);
    expect(types.every((t) => t.plugin === "@vmm/device-virtio")).toBe(true);
  });

  it("creates a transitional virtio-rng and a modern read-only virtio-blk from options", async () => {
    const rng = await create("virtio-rng", { transport: "transitional" });
    expect(rng).toBeInstanceOf(VirtioPciFunction);
    expect(rng.configRead(0, 4)).toBe(0x10041af4);
    const image = inDir("disk.img");
    await writeFile(image, new Uint8Array(1 << 20));
    const blk = (await create("virtio-blk", { path: image, readonly: "on", serial: "abc" })) as VirtioPciFunction;
    expect(blk.configRead(0, 4)).toBe(0x10421af4);
    expect((blk.virtioDevice as pkg.VirtioBlk).readonly).toBe(true);
    expect((blk.virtioDevice as pkg.VirtioBlk).capacity).toBe(2048n);
    await blk.close();
  });

  it("virtio-blk's dataplane option: worker by default (over memfd-backed RAM), main on request, anything else refused", async () => {
    const image = inDir("disk.img");
    await writeFile(image, new Uint8Array(1 << 20));
    const memory = makeMemfdMemory();
    try {
      const worker = (await create("virtio-blk", { path: image, readonly: "on" }, undefined, memory)) as VirtioPciFunction;
      expect(worker.transport.dataPlane(0)).toBeDefined();
      await worker.close();
      const main = (await create("virtio-blk", { path: image, readonly: "on", dataplane: "main" }, undefined, memory)) as VirtioPciFunction;
      expect(main.transport.dataPlane(0)).toBeUndefined();
      await main.close();
      await expect(create("virtio-blk", { path: image, dataplane: "thread" }, undefined, memory)).rejects.toThrow(/expected one of worker, main/);
    } finally {
      closeMemfds();
    }
  });

  it("virtio-rng's dataplane option: worker by default (over memfd-backed RAM), main on request, anything else refused", async () => {
    const memory = makeMemfdMemory();
    try {
      const worker = (await create("virtio-rng", {}, undefined, memory)) as VirtioPciFunction;
      expect(worker.transport.dataPlane(0)).toBeDefined();
      await worker.close();
      const main = (await create("virtio-rng", { dataplane: "main" }, undefined, memory)) as VirtioPciFunction;
      expect(main.transport.dataPlane(0)).toBeUndefined();
      await main.close();
      await expect(create("virtio-rng", { dataplane: "thread" }, undefined, memory)).rejects.toThrow(/expected one of worker, main/);
    } finally {
      closeMemfds();
    }
  });

  it("reports missing or bad options clearly", async () => {
    await expect(create("virtio-blk", {})).rejects.toThrow(PluginError);
    await expect(create("virtio-blk", {})).rejects.toThrow(/option 'path' is required/);
    await expect(create("virtio-blk", { path: inDir("nope.img") })).rejects.toThrow(/nope.img: cannot open for writing \(ENOENT\)/);
    await expect(create("virtio-rng", { transport: "legacy" })).rejects.toThrow(/expected one of modern, transitional/);
    await expect(create("virtio-net", { path: inDir("s"), mac: "01:00:00:00:00:00" })).rejects.toThrow(/not a unicast MAC/);
    // Names the kernel cannot take are refused before /dev/net/tun is opened (no interface is created here).
    await expect(create("virtio-net", { backend: "tap", ifname: "name-longer-than-15" })).rejects.toThrow(/tap name-longer-than-15: cannot attach: .*at most 15 bytes/);
    await expect(create("virtio-net", { mode: "tap", ifname: "bad/name" })).rejects.toThrow(ConfigurationError);
    await expect(create("virtio-net", { mode: "tap", backend: "socket" })).rejects.toThrow(/disagree/);
    await expect(create("virtio-net", {})).rejects.toThrow(/needs path=/);
    await expect(create("virtio-console", { backend: "socket" })).rejects.toThrow(/needs path=/);
  });

  it("creates virtio-net on a socket with the given MAC, and virtio-console on a socket", async () => {
    const net = (await create("virtio-net", { mode: "socket", role: "listen", path: inDir("n.sock"), mac: "52:54:00:aa:bb:cc" })) as VirtioPciFunction;
    expect([...(net.virtioDevice as pkg.VirtioNet).config.subarray(0, 6)]).toEqual([0x52, 0x54, 0, 0xaa, 0xbb, 0xcc]);
    const con = (await create("virtio-console", { backend: "socket", path: inDir("c.sock") })) as VirtioPciFunction;
    expect(con.configRead(0, 4)).toBe(0x10431af4);
    await net.close();
    await con.close();
  });
});
