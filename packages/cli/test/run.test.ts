import { EventEmitter } from "node:events";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { Tokens } from "@vmm/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { VirtualMachineResult } from "../src/arch/machine.js";
import type { CliContext } from "../src/context.js";
import { main } from "../src/main.js";
import { settleTimeouts } from "../src/settle.js";
import { FakeMachine, type GuestScript } from "./helpers/fake-machine.js";
import { fixturePlugin } from "./helpers/spawn.js";

const tmp = mkdtempSync(path.join(tmpdir(), "vmm-run-"));
const kernel = path.join(tmp, "guest.bin");
writeFileSync(kernel, Uint8Array.of(0xf4));
const disk = path.join(tmp, "disk.img");
writeFileSync(disk, new Uint8Array(4096));
const fixture = fixturePlugin("fixture-plugin.mjs");
const events = ((globalThis as { __fixtureEvents?: string[] }).__fixtureEvents ??= []);

interface Harness {
  ctx: CliContext;
  out: string[];
  err: string[];
  machines: FakeMachine[];
  signals: EventEmitter;
}

function harness(guest: GuestScript, options: { withStop?: boolean; builtins?: string[]; realBus?: boolean } = {}): Harness {
  const out: string[] = [];
  const err: string[] = [];
  const machines: FakeMachine[] = [];
  const signals = new EventEmitter();
  const ctx: CliContext = {
    cwd: tmp,
    stdout: (t) => out.push(t),
    stderr: (t) => err.push(t),
    signals: signals as unknown as CliContext["signals"],
    builtins: (options.builtins ?? []).map((file) => ({ name: file, load: () => import(pathToFileURL(fixturePlugin(file)).href) })),
    machineFactory: async (arch) => {
      expect(arch).toBe("x86_64");
      return (config) => {
        const m = new FakeMachine(config, guest, options.withStop ?? true, options.realBus ?? false);
        machines.push(m);
        return m;
      };
    },
  };
  return { ctx, out, err, machines, signals };
}

const shutdown: VirtualMachineResult = { status: 0, reason: "shutdown" };

beforeEach(() => {
  events.length = 0;
});


/** Waits until `condition()` holds (polled every 10 ms, for at most 10 s) and fails the test if it never does. */
async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !condition(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(condition()).toBe(true);
}
describe("vmm run assembles one VM through its DI container", () => {
  it("creates plugin devices from the machine's container and lets the guest use them", async () => {
    let seen = 0;
    const h = harness(async (m) => {
      const bar = m.bar("fixture-dev0");
      m.mmio.write(bar, 4, 0xcafe);
      seen = m.mmio.read(bar, 4);
      expect(m.mmio.read(bar + 4, 4)).toBe(0x42);
      return shutdown;
    });
    const status = await main(["run", "-k", kernel, "-m", "64", "-c", "2", "--name", "t1", "--plugin", `${fixture},flavour=fancy`, "--device", "fixture-dev,id=0x42"], h.ctx);
    expect(h.err.join("")).toBe("");
    expect(status).toBe(0);
    expect(seen).toBe(0xcafe);
    const m = h.machines[0]!;
    expect(m.config).toMatchObject({ name: "t1", memory: 64 * 2 ** 20, cpus: 2, params: "", console: "serial", debug: false });
    expect(m.config.kernel).toMatchObject({ path: kernel, kind: "raw" });
    expect(m.devices.map((d) => d.name)).toEqual(["fixture-dev0"]);
    // register ran with the validated options, once into the planning container and once into the VM's;
    // close() ran after the guest stopped.
    expect(events).toEqual(["register flavour=fancy", "register flavour=fancy", "close fixture-dev0"]);
    expect(m.closed).toBe(true);
  });

  it("expands -d, -n, --rng and --console virtio into built-in devices with their options", async () => {
    const h = harness(async () => shutdown, { builtins: ["fake-virtio.mjs"] });
    const status = await main(["run", "-k", kernel, "-d", disk, "-d", `${disk},ro`, "-n", "socket,path=/tmp/sock", "--rng", "--console", "virtio"], h.ctx);
    expect(h.err.join("")).toBe("");
    expect(status).toBe(0);
    const devices = h.machines[0]!.devices as unknown as Array<{ name: string; options: object }>;
    expect(devices.map((d) => [d.name, d.options])).toEqual([
      ["virtio-blk0", { path: disk, readonly: false }],
      ["virtio-blk1", { path: disk, readonly: true }],
      ["virtio-net0", { mode: "socket", path: "/tmp/sock", tapif: undefined }],
      ["virtio-rng0", {}],
      ["virtio-console0", {}],
    ]);
    expect(events).toEqual(["close virtio-console0", "close virtio-rng0", "close virtio-net0", "close virtio-blk1", "close virtio-blk0"]);
  });

  it("--plugin with a built-in's name gives the built-in options instead of loading another copy", async () => {
    const h = harness(async () => shutdown, { builtins: ["fixture-plugin.mjs"] });
    expect(await main(["run", "-k", kernel, "--plugin", "fixture-plugin.mjs,flavour=fancy", "--device", "fixture-dev,id=1"], h.ctx)).toBe(0);
    expect(events.filter((e) => e.startsWith("register"))).toEqual(["register flavour=fancy", "register flavour=fancy"]);
    const bad = harness(async () => shutdown, { builtins: ["fixture-plugin.mjs"] });
    expect(await main(["run", "-k", kernel, "--plugin", "fixture-plugin.mjs,flavour=bland"], bad.ctx)).toBe(2);
    expect(bad.err.join("")).toBe('vmm: error: plugin fixture-plugin: option \'flavour\': expected one of plain, fancy, got "bland"\n');
  });

  it("built-in device options are validated like any plugin's", async () => {
    const h = harness(async () => shutdown, { builtins: ["fake-virtio.mjs"] });
    const status = await main(["run", "-k", kernel, "-n", "tap", "--device", "virtio-blk"], h.ctx);
    expect(status).toBe(2);
    expect(h.err.join("")).toBe("vmm: error: plugin fake-virtio: device virtio-blk0: option 'path' is required (disk image)\n");
    expect(h.machines).toHaveLength(0);
  });

  it("passes the guest's status through and reports a failure", async () => {
    const h = harness(async () => ({ status: 3, reason: "debug-exit", message: "guest wrote 3 to the debug-exit port" }));
    expect(await main(["run", "-k", kernel, "--name", "t3"], h.ctx)).toBe(3);
    expect(h.err.join("")).toBe("vmm: error: t3: guest wrote 3 to the debug-exit port (exit status 3)\n");
  });

  it("reports an address conflict between two devices in one line, exit 1, and closes what was built", async () => {
    const h = harness(async () => shutdown);
    const status = await main(["run", "-k", kernel, "--plugin", fixture, "--device", "fixture-dev,id=1,port=0x500", "--device", "fixture-dev,id=2,port=0x502"], h.ctx);
    expect(status).toBe(1);
    expect(h.err.join("")).toBe("vmm: error: pio: fixture-dev1 [0x502, +0x4) overlaps fixture-dev0\n");
    expect(events).toContain("close fixture-dev0");
    expect(h.machines[0]!.closed).toBe(true);
  });

  it("stops the VM cleanly when a device throws while the guest runs, naming the device", async () => {
    let afterFault = 0;
    const h = harness(async (m) => {
      const bar = m.bar("fixture-dev0");
      expect(m.mmio.read(bar, 4)).toBe(0xffffffff);
      afterFault = m.mmio.read(bar, 4);
      await m.stopRequested;
      return { status: 0, reason: "stopped" };
    });
    const status = await main(["run", "-k", kernel, "--plugin", fixture, "--device", "fixture-dev,id=1,mode=explode"], h.ctx);
    expect(status).toBe(1);
    expect(h.err.join("")).toBe("vmm: error: device fixture-dev0 failed in BAR0 read at 0x0 (4 bytes): scratch register is on fire\n");
    expect(afterFault).toBe(0xffffffff);
    expect(h.machines[0]!.stopReason).toMatch(/fixture-dev0/);
    expect(events.at(-1)).toBe("close fixture-dev0");
  });

  it("a device that throws while the bus programs its BARs is reported by name with its own error", async () => {
    let ran = false;
    const h = harness(
      async () => {
        ran = true;
        return shutdown;
      },
      { realBus: true },
    );
    const status = await main(["run", "-k", kernel, "--plugin", fixture, "--device", "fixture-dev,id=1,mode=explode-bar-write"], h.ctx);
    expect(status).toBe(1);
    // Not the bus's "BAR0 ... cannot be mapped", which only follows from the guard answering all-ones.
    expect(h.err.join("")).toBe("vmm: error: device fixture-dev0 failed in config write at 0x10: BAR0 register welded shut\n");
    expect(ran).toBe(false);
    expect(events.at(-1)).toBe("close fixture-dev0");
    expect(h.machines[0]!.closed).toBe(true);
  });

  it("a device fault prints its stack with --debug", async () => {
    const h = harness(async (m) => {
      m.mmio.read(m.bar("fixture-dev0"), 4);
      await m.stopRequested;
      return shutdown;
    });
    expect(await main(["run", "-k", kernel, "--debug", "--plugin", fixture, "--device", "fixture-dev,id=1,mode=explode"], h.ctx)).toBe(1);
    expect(h.err.join("")).toMatch(/vmm: error: device fixture-dev0 failed in BAR0 read/);
  });

  it.each([
    ["SIGHUP", 129],
    ["SIGINT", 130],
    ["SIGQUIT", 131],
    ["SIGTERM", 143],
  ])("%s stops the VM and flushes devices", async (signal, expected) => {
    let started = false;
    const h = harness(async (m) => {
      started = true;
      await m.stopRequested;
      return { status: 0, reason: "stopped" };
    });
    const running = main(["run", "-k", kernel, "--plugin", fixture, "--device", "fixture-dev,id=1", "--name", "sig"], h.ctx);
    await until(() => started); // the VM runs (a fixed delay raced assembly on a cold machine)
    expect(events).not.toContain("close fixture-dev0");
    h.signals.emit(signal);
    expect(await running).toBe(expected);
    expect(h.machines[0]!.stopReason).toBe(signal);
    expect(events.at(-1)).toBe("close fixture-dev0");
    expect(h.err.join("")).toBe(`vmm: sig: stopped by ${signal}\n`);
    expect(h.signals.listenerCount(signal)).toBe(0);
  });

  it("an error thrown by device code outside a guest access stops the VM cleanly with one line", async () => {
    const h = harness(async (m) => {
      setTimeout(() => h.signals.emit("unhandledRejection", new Error("disk callback exploded")), 10);
      await m.stopRequested;
      return { status: 1, reason: "stopped" };
    });
    expect(await main(["run", "-k", kernel, "--plugin", fixture, "--device", "fixture-dev,id=1"], h.ctx)).toBe(1);
    expect(h.err.join("")).toBe("vmm: error: a device or plugin failed outside a guest access: disk callback exploded\n");
    expect(h.machines[0]!.stopReason).toBe("async failure");
    expect(events.at(-1)).toBe("close fixture-dev0");
    expect(h.signals.listenerCount("unhandledRejection")).toBe(0);
  });

  it("a signal still closes devices when the machine cannot be asked to stop", async () => {
    let started = false;
    const h = harness(() => ((started = true), new Promise<VirtualMachineResult>(() => {})), { withStop: false });
    const running = main(["run", "-k", kernel, "--plugin", fixture, "--device", "fixture-dev,id=1"], h.ctx);
    await until(() => started);
    h.signals.emit("SIGINT");
    expect(await running).toBe(130);
    expect(events.at(-1)).toBe("close fixture-dev0");
  });

  it("--debug traces config accesses and unhandled accesses", async () => {
    const h = harness(async (m) => {
      m.devices[0]!.configRead(0, 4);
      m.devices[0]!.configWrite(4, 2, 0x6);
      m.pio.read(0x1234, 1);
      return shutdown;
    });
    expect(await main(["run", "-k", kernel, "--debug", "--plugin", fixture, "--device", "fixture-dev,id=1"], h.ctx)).toBe(0);
    const err = h.err.join("");
    expect(err).toContain("vmm: debug: fixture-dev0: config read 0x0/4 -> 0x1234abcd\n");
    expect(err).toContain("vmm: debug: fixture-dev0: config write 0x4/2 <- 0x6\n");
    expect(err).toContain("vmm: debug: pio: unhandled read at 0x1234/1\n");
  });

  it("a device type that cannot be created or returns no device is reported by plugin", async () => {
    const sloppy = fixturePlugin("bad-device.mjs");
    let h = harness(async () => shutdown);
    expect(await main(["run", "-k", kernel, "--plugin", sloppy, "--device", "create-throws"], h.ctx)).toBe(1);
    expect(h.err.join("")).toBe("vmm: error: plugin sloppy: device create-throws0 could not be created: hardware not found\n");
    h = harness(async () => shutdown);
    expect(await main(["run", "-k", kernel, "--plugin", sloppy, "--device", "not-a-device"], h.ctx)).toBe(1);
    expect(h.err.join("")).toMatch(/^vmm: error: plugin sloppy: device type 'not-a-device' returned something that is not a PCI device/);
  });

  it("the devices get the machine's container with its core services", async () => {
    const h = harness(async (m) => {
      expect(m.container.resolve(Tokens.PortIo)).toBe(m.pio);
      return shutdown;
    });
    expect(await main(["run", "-k", kernel, "--plugin", fixture, "--device", "fixture-dev,id=1,port=0x600"], h.ctx)).toBe(0);
    expect(h.machines[0]!.pio.find(0x600)?.owner).toBe("fixture-dev0");
  });
});

// Long enough that loading a fixture module (transformed on first use, on a cold machine) is not what times out.
const HANG_MS = 1500;

describe("plugin code that never settles, and signals while the VM is assembled", () => {
  const sloppy = fixturePlugin("bad-device.mjs");
  const defaultTimeout = settleTimeouts.ms;
  afterEach(() => {
    settleTimeouts.ms = defaultTimeout;
  });
  it("the default bound is 10 s", () => {
    expect(defaultTimeout).toBe(10_000);
  });

  it("a register() that never settles is timed out with one line naming the plugin", async () => {
    settleTimeouts.ms = HANG_MS;
    const h = harness(async () => shutdown);
    expect(await main(["run", "-k", kernel, "--plugin", fixturePlugin("register-hangs.mjs")], h.ctx)).toBe(1);
    expect(h.err.join("")).toBe(`vmm: error: plugin sleepy: register did not finish within ${HANG_MS} ms (a promise that never settles?)\n`);
    expect(h.machines).toHaveLength(0);
  });

  it("a create() that never settles is timed out, naming the plugin and device, and what was built is closed", async () => {
    settleTimeouts.ms = HANG_MS;
    const h = harness(async () => shutdown);
    const status = await main(["run", "-k", kernel, "--plugin", fixture, "--plugin", sloppy, "--device", "fixture-dev,id=1", "--device", "create-hangs"], h.ctx);
    expect(status).toBe(1);
    expect(h.err.join("")).toBe(`vmm: error: plugin sloppy: device create-hangs0 could not be created: create() did not finish within ${HANG_MS} ms\n`);
    expect(events).toContain("close fixture-dev0");
    expect(h.machines[0]!.closed).toBe(true);
  });

  it("a close() that never settles is reported and the other devices still close", async () => {
    settleTimeouts.ms = HANG_MS;
    const h = harness(async () => shutdown);
    const status = await main(["run", "-k", kernel, "--plugin", fixture, "--plugin", sloppy, "--device", "fixture-dev,id=1", "--device", "close-hangs"], h.ctx);
    expect(status).toBe(0);
    expect(h.err.join("")).toBe(`vmm: error: device close-hangs0 failed to close: close() did not finish within ${HANG_MS} ms\n`);
    expect(events).toEqual(expect.arrayContaining(["close close-hangs0 (never settles)", "close fixture-dev0"]));
    expect(h.machines[0]!.closed).toBe(true);
  });

  it.each([
    ["SIGINT", 130],
    ["SIGTERM", 143],
    ["SIGHUP", 129],
  ])("%s while devices are being created closes the devices already created", async (signal, expected) => {
    const h = harness(async () => shutdown);
    const running = main(["run", "-k", kernel, "--name", "early", "--plugin", fixture, "--plugin", sloppy, "--device", "fixture-dev,id=1", "--device", "create-hangs"], h.ctx);
    await until(() => events.includes("creating create-hangs0"));
    expect(events).not.toContain("close fixture-dev0");
    h.signals.emit(signal);
    expect(await running).toBe(expected);
    expect(events.at(-1)).toBe("close fixture-dev0");
    expect(h.machines[0]!.closed).toBe(true);
    expect(h.err.join("")).toBe(`vmm: early: stopped by ${signal}\n`);
    expect(h.signals.listenerCount(signal)).toBe(0);
  });

  it("a signal while a plugin registers stops before any machine exists", async () => {
    const h = harness(async () => shutdown);
    const running = main(["run", "-k", kernel, "--name", "early", "--plugin", fixturePlugin("register-hangs.mjs")], h.ctx);
    await new Promise((r) => setTimeout(r, 50));
    h.signals.emit("SIGTERM");
    expect(await running).toBe(143);
    expect(h.machines).toHaveLength(0);
    expect(h.err.join("")).toBe("vmm: early: stopped by SIGTERM\n");
  });
});
