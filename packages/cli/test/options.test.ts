import { describe, expect, it } from "vitest";
import { UsageError } from "../src/errors.js";
import { detectKernelKind } from "../src/options/kernel.js";
import { buildRunConfig } from "../src/options/run-config.js";
import { parseCpuCount, parseMemorySize } from "../src/options/size.js";
import { formatSpec, parseSpec } from "../src/options/spec.js";
import { expandDisk, expandNetwork, expandVfioPci } from "../src/options/sugar.js";

const MiB = 2 ** 20;

describe("memory sizes (-m)", () => {
  it.each([
    ["256", 256 * MiB],
    ["512M", 512 * MiB],
    ["512m", 512 * MiB],
    ["1G", 1024 * MiB],
    ["2GiB", 2048 * MiB],
    ["65536K", 64 * MiB],
    ["1T", 2 ** 40],
  ])("%s is %d bytes", (text, bytes) => expect(parseMemorySize(text)).toBe(bytes));

  it.each(["", "abc", "1.5G", "-1", "12Q", "0", "512K", "2T", "99999999999999G"])("refuses %j", (text) => {
    expect(() => parseMemorySize(text)).toThrow(UsageError);
  });

  it("names the problem", () => {
    expect(() => parseMemorySize("512K")).toThrow(/too small/);
    expect(() => parseMemorySize("1025K")).toThrow(/whole number of MiB/);
    expect(() => parseMemorySize("2T")).toThrow(/too large/);
  });
});

describe("cpu counts (-c)", () => {
  it("takes 1..255", () => {
    expect(parseCpuCount("1")).toBe(1);
    expect(parseCpuCount("255")).toBe(255);
    for (const bad of ["0", "256", "two", "1.5", ""]) expect(() => parseCpuCount(bad)).toThrow(UsageError);
  });
});

describe("NAME,key=value specs", () => {
  it("splits name, options and bare flags", () => {
    expect(parseSpec("virtio-blk,path=/a.img,readonly", "--device")).toEqual({
      name: "virtio-blk",
      options: { path: "/a.img", readonly: true },
    });
  });
  it("keeps '=' inside values and unescapes \\,", () => {
    const spec = parseSpec("x,a=b=c,p=one\\,two", "--device");
    expect(spec.options).toEqual({ a: "b=c", p: "one,two" });
    expect(parseSpec(formatSpec(spec), "--device")).toEqual(spec);
  });
  it("refuses an empty name, an empty key and a key given twice", () => {
    expect(() => parseSpec(",a=1", "--device")).toThrow(/missing the name/);
    expect(() => parseSpec("x,=1", "--device")).toThrow(/empty option name/);
    expect(() => parseSpec("x,a=1,a=2", "--device")).toThrow(/'a' given twice/);
  });
});

describe("shorthands", () => {
  it("-d PATH[,ro] becomes virtio-blk", () => {
    expect(expandDisk("/img")).toEqual({ name: "virtio-blk", options: { path: "/img" } });
    expect(expandDisk("/img,ro")).toEqual({ name: "virtio-blk", options: { path: "/img", readonly: true } });
    expect(() => expandDisk("/img,rw")).toThrow(/unknown disk flag 'rw'/);
  });
  it("-n MODE[,opts] becomes virtio-net; none gives nothing", () => {
    expect(expandNetwork("tap")).toEqual({ name: "virtio-net", options: { mode: "tap" } });
    expect(expandNetwork("socket,path=/tmp/x")).toEqual({ name: "virtio-net", options: { mode: "socket", path: "/tmp/x" } });
    expect(expandNetwork("mode=tap,tapif=tap0")).toEqual({ name: "virtio-net", options: { mode: "tap", tapif: "tap0" } });
    expect(expandNetwork("mode=user,forward=8080:80/tcp")).toEqual({ name: "virtio-net", options: { mode: "user", forward: "8080:80/tcp" } });
    expect(expandNetwork("passt,socket=/tmp/p")).toEqual({ name: "virtio-net", options: { mode: "passt", socket: "/tmp/p" } });
    expect(expandNetwork("none")).toBeUndefined();
    expect(() => expandNetwork("carrier-pigeon")).toThrow(/unknown mode 'carrier-pigeon' \(known: tap, socket, dgram, passt, user, none\)/);
    expect(() => expandNetwork("none,path=x")).toThrow(/takes no options/);
  });
  it("--vfio-pci ADDR[,opts] becomes vfio-pci,host=ADDR", () => {
    expect(expandVfioPci("0000:01:00.0")).toEqual({ name: "vfio-pci", options: { host: "0000:01:00.0" } });
    expect(expandVfioPci("01:00.0,placement=root-port,mmap=false")).toEqual({
      name: "vfio-pci",
      options: { host: "01:00.0", placement: "root-port", mmap: "false" },
    });
    expect(() => expandVfioPci("01:00.0,host=02:00.0")).toThrow(/host address is given twice/);
  });
  it("puts shorthand devices first, then --device in order", () => {
    const c = buildRunConfig({ kernel: "k", disk: ["a", "b,ro"], rng: true, console: "virtio", network: ["tap"], vfioPci: ["01:00.0"], device: ["x,k=v"] }, 7);
    expect(c.devices.map((d) => d.name)).toEqual(["virtio-blk", "virtio-blk", "virtio-net", "virtio-rng", "virtio-console", "vfio-pci", "x"]);
    expect(c.stats).toBe(false);
    expect(c.name).toBe("guest-7");
    expect(c.memory).toBe(256 * MiB);
    expect(c.cpus).toBe(1);
  });
  it("needs a kernel and a sane name", () => {
    expect(() => buildRunConfig({})).toThrow(/no kernel given/);
    expect(() => buildRunConfig({ kernel: "k", name: "a b" })).toThrow(/--name/);
  });
});

describe("kernel kinds", () => {
  const image = (size: number, at: number, bytes: number[]) => {
    const b = new Uint8Array(size);
    b.set(bytes, at);
    return b;
  };
  it("finds the bzImage setup header magic at 0x202", () => {
    expect(detectKernelKind(image(0x400, 0x202, [0x48, 0x64, 0x72, 0x53]))).toBe("bzimage");
  });
  it("finds ELF64 and refuses ELF32", () => {
    expect(detectKernelKind(image(64, 0, [0x7f, 0x45, 0x4c, 0x46, 2]))).toBe("elf64");
    expect(() => detectKernelKind(image(64, 0, [0x7f, 0x45, 0x4c, 0x46, 1]), "k32")).toThrow(/'k32' is a 32-bit ELF/);
  });
  it("treats everything else, including short files, as raw", () => {
    expect(detectKernelKind(new Uint8Array([0xf4]))).toBe("raw");
    expect(detectKernelKind(image(0x203, 0x202, [0x48]))).toBe("raw");
  });
});
