/**
 * The control commands as processes against real `vmm run`s under /dev/kvm: list, pause, resume, stat, stop, two
 * VMs at once, a VM killed with its socket left behind, a name in use, malformed protocol lines. Each test has its
 * own XDG_RUNTIME_DIR. The guest (guests/echo.c) says "echo: ready", then answers each byte on COM1 with a line.
 */
import { existsSync, lstatSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { inflateSync } from "node:zlib";
import { buildGuest } from "@vmm/guest-kit";
import { beforeAll, describe, expect, it } from "vitest";
import { kvmOk } from "./helpers/kvm.js";
import { killVmsAfterEach, startVmm, waitFor } from "./helpers/vm-process.js";
import { cliDir, vmm } from "./helpers/spawn.js";

let echo = "";
killVmsAfterEach();

/** A fresh XDG_RUNTIME_DIR and the control socket directory in it. */
function runtimeDir() {
  const xdg = mkdtempSync(path.join(tmpdir(), "vmm-ctl-kvm-"));
  return { env: { XDG_RUNTIME_DIR: xdg }, sockets: path.join(xdg, "vmm") };
}

/** Starts `vmm run` of the echo guest named `name`; resolves once the guest said it is ready. */
async function startVm(name: string, env: NodeJS.ProcessEnv, args: string[] = []) {
  const vm = startVmm(["-k", echo, "--name", name, ...args], { cwd: cliDir, env: { ...process.env, ...env } });
  await waitFor(() => vm.stdout.includes("echo: ready") || vm.child.exitCode !== null, `${name} is ready`);
  expect(vm.stderr).toBe("");
  return vm;
}

/** An 8-bit RGB PNG as the vesa device encodes it (one IDAT stream, filter 0 on every row): size and pixels. */
function decodePng(file: Buffer) {
  expect(file.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  const chunks: Array<{ type: string; data: Buffer }> = [];
  for (let at = 8; at < file.length; ) {
    const length = file.readUInt32BE(at);
    chunks.push({ type: file.toString("latin1", at + 4, at + 8), data: file.subarray(at + 8, at + 8 + length) });
    at += 12 + length;
  }
  expect(chunks.map((c) => c.type)).toEqual(["IHDR", "IDAT", "IEND"]);
  const ihdr = chunks[0]!.data;
  const width = ihdr.readUInt32BE(0);
  const height = ihdr.readUInt32BE(4);
  expect([...ihdr.subarray(8)]).toEqual([8, 2, 0, 0, 0]); // 8 bits, RGB, deflate, no filter method, no interlace
  const raw = inflateSync(chunks[1]!.data);
  expect(raw.length).toBe(height * (1 + 3 * width));
  return {
    width,
    height,
    pixel(x: number, y: number) {
      const row = y * (1 + 3 * width);
      expect(raw[row]).toBe(0);
      return [...raw.subarray(row + 1 + 3 * x, row + 4 + 3 * x)];
    },
  };
}

const pioExits = (env: NodeJS.ProcessEnv, name: string) => {
  const r = vmm(["stat", name, "--json"], { env });
  expect(r.status, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { machine: { pioExits: number } }).machine.pioExits;
};

describe.skipIf(!kvmOk)("control commands against running VMs under /dev/kvm", () => {
  beforeAll(async () => {
    echo = await buildGuest("echo", { format: "elf", source: path.join(cliDir, "guests/echo.c") });
  }, 120_000);

  it("list shows two VMs at once with their pid, state, memory, vCPUs and devices (text and --json)", async () => {
    const { env } = runtimeDir();
    const a = await startVm("alpha", env);
    const b = await startVm("beta", env, ["--rng", "-c", "2", "-m", "128M"]);
    const text = vmm(["list"], { env });
    expect(text.status, text.stderr).toBe(0);
    expect(text.stderr).toBe("");
    const lines = text.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^NAME\s+PID\s+STATE\s+UPTIME\s+MEMORY\s+CPUS\s+DEVICES$/);
    expect(lines.slice(1)).toEqual([
      expect.stringMatching(new RegExp(`^alpha\\s+${a.child.pid}\\s+running\\s+\\d+s\\s+256M\\s+1\\s+-$`)),
      expect.stringMatching(new RegExp(`^beta\\s+${b.child.pid}\\s+running\\s+\\d+s\\s+128M\\s+2\\s+virtio-rng0$`)),
    ]);
    const json = JSON.parse(vmm(["list", "--json"], { env }).stdout) as Array<Record<string, unknown>>;
    expect(json).toEqual([
      expect.objectContaining({ name: "alpha", pid: a.child.pid, state: "running", arch: "x86_64", memory: 256 * 1024 * 1024, cpus: 1, devices: [] }),
      expect.objectContaining({ name: "beta", pid: b.child.pid, state: "running", memory: 128 * 1024 * 1024, cpus: 2, devices: ["virtio-rng0"] }),
    ]);
    expect(json[0]).not.toHaveProperty("ok");
  });

  it("pause stops the guest (no output, exit counters still) and resume continues it; stat prints the counters", async () => {
    const { env } = runtimeDir();
    const vm = await startVm("pz", env);
    const text = vmm(["stat", "pz"], { env });
    expect(text.stdout).toMatch(/^pz: pioExits=\d+ mmioExits=\d+ msiSignals=0 msiFallbacks=0\n$/);

    const paused = vmm(["pause", "pz"], { env });
    expect([paused.status, paused.stdout, paused.stderr]).toEqual([0, "pz: paused\n", ""]);
    expect(vmm(["pause", "pz"], { env })).toMatchObject({ status: 1, stderr: "vmm: error: pz is already paused\n" });
    expect(JSON.parse(vmm(["list", "--json"], { env }).stdout)[0].state).toBe("paused");
    const before = pioExits(env, "pz");
    // A byte for the guest while it is paused: the UART takes it, the guest cannot answer.
    vm.child.stdin!.write("x");
    await new Promise((r) => setTimeout(r, 500));
    expect(vm.stdout).not.toContain("echo: got x");
    expect(pioExits(env, "pz")).toBe(before);

    expect(vmm(["resume", "pz"], { env })).toMatchObject({ status: 0, stdout: "pz: running\n" });
    await waitFor(() => vm.stdout.includes("echo: got x"), "the resumed guest answered");
    expect(pioExits(env, "pz")).toBeGreaterThan(before);
    expect(vmm(["resume", "pz"], { env })).toMatchObject({ status: 1, stderr: "vmm: error: pz is not paused\n" });
  });

  it("debug prints every vCPU's registers: a paused 64-bit guest halted in its wait loop", async () => {
    const { env } = runtimeDir();
    await startVm("regs", env, ["-c", "2"]);
    expect(vmm(["pause", "regs"], { env }).status).toBe(0);
    const r = vmm(["debug", "regs", "--json"], { env });
    expect(r.status, r.stderr).toBe(0);
    const vcpus = JSON.parse(r.stdout) as Array<{ id: number; mpState: string; groups: Array<{ name: string; values: Record<string, string> }> }>;
    expect(vcpus.map((v) => v.id)).toEqual([0, 1]);
    const group = (name: string) => vcpus[0]!.groups.find((g) => g.name === name)!.values;
    // guests/echo.c waits with sti; hlt for COM1's interrupt: vCPU 0 is halted, in long mode (EFER.LMA, CS.L), at
    // an address of the ELF image (guest-kit links above 1 MiB, below 4 GiB), with interrupts enabled (IF).
    expect(vcpus[0]!.mpState).toBe("halted");
    expect(BigInt(group("control").efer!) & 0x400n).toBe(0x400n);
    expect(group("segments").cs).toMatch(/ l=1 /);
    const rip = BigInt(group("registers").rip!);
    expect(rip >= 0x100000n && rip < 0x1_0000_0000n).toBe(true);
    expect(Number(group("registers").rflags) & 0x200).toBe(0x200);
    const text = vmm(["debug", "regs"], { env });
    expect(text.stdout).toMatch(/^vCPU 0 \(halted\)\n  registers:\n    rax=0x[0-9a-f]+ +rbx=/);
    expect(text.stdout).toContain(`rip=${group("registers").rip}`);
    expect(text.stdout).toMatch(/^vCPU 1 \(/m);
  });

  it("stop --force ends the VM with status 143 and removes its socket; a paused VM stops too; SIGTERM removes the socket too", async () => {
    const { env, sockets } = runtimeDir();
    for (const pauseFirst of [false, true]) {
      const vm = await startVm("st", env);
      expect(lstatSync(path.join(sockets, "st.sock")).isSocket()).toBe(true);
      if (pauseFirst) expect(vmm(["pause", "st"], { env }).status).toBe(0);
      const r = vmm(["stop", "st", "--force"], { env });
      expect([r.status, r.stdout, r.stderr]).toEqual([0, "st: stopped\n", ""]);
      expect(await vm.exit).toBe(143);
      expect(vm.stderr).toBe("vmm: st: stopped by vmm stop\n");
      expect(existsSync(path.join(sockets, "st.sock"))).toBe(false);
    }
    expect(vmm(["stop", "st"], { env })).toMatchObject({ status: 1, stderr: `vmm: error: no VM named 'st' (no control socket ${path.join(sockets, "st.sock")})\n` });
    // SIGTERM (and the other stop signals) removes the socket the same way.
    const vm = await startVm("term", env);
    vm.child.kill("SIGTERM");
    expect(await vm.exit).toBe(143);
    expect(existsSync(path.join(sockets, "term.sock"))).toBe(false);
  });

  it("stop presses the power button; a guest without ACPI never reacts, so after --timeout it is stopped by force, in one line", async () => {
    const { env, sockets } = runtimeDir();
    const vm = await startVm("deaf", env);
    const started = Date.now();
    const r = vmm(["stop", "deaf", "--timeout", "0.5"], { env });
    expect(Date.now() - started).toBeGreaterThanOrEqual(500);
    expect([r.status, r.stdout, r.stderr]).toEqual([0, "deaf: stopped\n", "vmm: deaf: did not power off within 0.5 s (its guest has not enabled the ACPI power button); stopping it\n"]);
    expect(await vm.exit).toBe(143);
    expect(vm.stderr).toBe("vmm: deaf: stopped by vmm stop\n");
    expect(existsSync(path.join(sockets, "deaf.sock"))).toBe(false);
    // A paused guest cannot act on the button: it is stopped at once, saying why.
    const paused = await startVm("asleep", env);
    expect(vmm(["pause", "asleep"], { env }).status).toBe(0);
    const p = vmm(["stop", "asleep"], { env });
    expect([p.status, p.stdout, p.stderr]).toEqual([0, "asleep: stopped\n", "vmm: asleep: no graceful shutdown: asleep is paused; its guest cannot shut down until it is resumed; stopping it\n"]);
    expect(await paused.exit).toBe(143);
  });

  it("screenshot writes the vesa device's picture as a PNG where the caller says, and refuses a VM without a display", async () => {
    const { env } = runtimeDir();
    const pattern = await buildGuest("vesa-pattern", { format: "elf", source: path.join(cliDir, "guests/vesa-pattern.c") });
    const vm = startVmm(["-k", pattern, "--name", "shot", "--device", "vesa"], { cwd: cliDir, env: { ...process.env, ...env } });
    await waitFor(() => vm.stdout.includes("vesa-pattern: ready") || vm.child.exitCode !== null, "the pattern is drawn");
    const cwd = mkdtempSync(path.join(tmpdir(), "vmm-shot-"));
    const r = vmm(["screenshot", "shot", "screen.png"], { env, cwd });
    expect([r.status, r.stdout, r.stderr]).toEqual([0, "shot: 64x48 picture of vesa0 in screen.png\n", ""]);
    const png = decodePng(readFileSync(path.join(cwd, "screen.png")));
    expect([png.width, png.height]).toEqual([64, 48]);
    for (const [x, y] of [[0, 0], [63, 0], [0, 47], [63, 47], [17, 29], [40, 5]] as const) {
      expect(png.pixel(x, y), `pixel ${x},${y}`).toEqual([(x * 4) & 0xff, (y * 5) & 0xff, (x ^ y) & 0xff]);
    }
    // The file is not replaced without --force; with it, it is.
    writeFileSync(path.join(cwd, "screen.png"), "keep");
    expect(vmm(["screenshot", "shot", "screen.png"], { env, cwd })).toMatchObject({ status: 1, stderr: "vmm: error: 'screen.png' exists; give --force to replace it\n" });
    expect(readFileSync(path.join(cwd, "screen.png"), "utf8")).toBe("keep");
    expect(vmm(["screenshot", "shot", "screen.png", "--force"], { env, cwd }).status).toBe(0);
    expect(decodePng(readFileSync(path.join(cwd, "screen.png"))).width).toBe(64);
    // A VM without a display device says so.
    await startVm("blind", env);
    expect(vmm(["screenshot", "blind", "blind.png"], { env, cwd })).toMatchObject({ status: 1, stderr: "vmm: error: blind has no display device (vmm run --device vesa gives it one)\n" });
    expect(existsSync(path.join(cwd, "blind.png"))).toBe(false);
  });

  it("a VM killed with SIGKILL leaves its socket; vmm list removes it, and vmm run --name takes the name again", async () => {
    const { env, sockets } = runtimeDir();
    for (const next of ["list", "run"] as const) {
      const vm = await startVm("k9", env);
      vm.child.kill("SIGKILL");
      await vm.exit;
      const file = path.join(sockets, "k9.sock");
      expect(lstatSync(file).isSocket()).toBe(true);
      if (next === "list") {
        const r = vmm(["list"], { env });
        expect(r.stderr).toBe(`vmm: removed the stale control socket of 'k9' (its VM is gone): ${file}\n`);
        expect(r.stdout).toBe("NAME  PID  STATE  UPTIME  MEMORY  CPUS  DEVICES\n");
        expect(existsSync(file)).toBe(false);
      } else {
        const again = await startVm("k9", env);
        expect(again.stdout).toContain("echo: ready");
        expect(vmm(["list", "--json"], { env }).stdout).toContain(`"pid": ${again.child.pid}`);
      }
    }
  });

  it("a second vmm run --name with a name in use is refused in one line before anything runs", async () => {
    const { env, sockets } = runtimeDir();
    await startVm("dup", env);
    const r = vmm(["run", "-k", echo, "--name", "dup"], { env });
    expect([r.status, r.stdout]).toEqual([2, ""]);
    expect(r.stderr).toBe(`vmm: error: a VM named 'dup' is already running (control socket ${path.join(sockets, "dup.sock")}); choose another --name\n`);
    expect(JSON.parse(vmm(["list", "--json"], { env }).stdout)).toHaveLength(1);
  });

  it("malformed and unknown protocol lines get error replies and the VM keeps running", async () => {
    const { env, sockets } = runtimeDir();
    await startVm("proto", env);
    const replies = await new Promise<string[]>((resolve, reject) => {
      const socket = connect(path.join(sockets, "proto.sock"));
      let data = "";
      socket.setEncoding("utf8");
      socket.on("connect", () => socket.write('{"v":1,"id":1,"cmd":"reboot"}\nnot json\n{"cmd":"status"}\n{"v":1,"id":"s","cmd":"status"}\n'));
      socket.on("data", (chunk: string) => {
        data += chunk;
        if (data.split("\n").length > 4) {
          socket.destroy();
          resolve(data.trimEnd().split("\n"));
        }
      });
      socket.on("error", reject);
    });
    const parsed = replies.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed.slice(0, 3)).toEqual([
      { v: 1, id: 1, ok: false, error: expect.stringContaining("unknown command 'reboot'") },
      { v: 1, ok: false, error: "malformed request: not JSON" },
      { v: 1, ok: false, error: "unsupported protocol version undefined (this VM speaks 1)" },
    ]);
    expect(parsed[3]).toMatchObject({ v: 1, id: "s", ok: true, name: "proto", state: "running" });
  });
});

describe.skipIf(!kvmOk)("a VM without a usable control socket directory", () => {
  it("runs anyway and says in one warning line that vmm list and vmm stop will not see it", () => {
    const hlt = path.join(mkdtempSync(path.join(tmpdir(), "vmm-noctl-")), "hlt.bin");
    writeFileSync(hlt, Uint8Array.of(0xf4));
    // HOME under a file: mkdir fails with ENOTDIR (XDG_RUNTIME_DIR empty: the fallback ~/.vmm is used).
    const r = vmm(["run", "-k", hlt, "--name", "no-control"], { env: { XDG_RUNTIME_DIR: "", HOME: "/dev/null" } });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe(
      "vmm: warning: cannot create the control socket directory '/dev/null/.vmm' (ENOTDIR); set XDG_RUNTIME_DIR to a directory of yours: this VM has no control socket (vmm list, pause and stop do not see it)\n",
    );
  });
});
