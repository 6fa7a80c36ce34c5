/** The control socket without KVM: protocol parsing, the server over a scripted target, socket paths and cleanup. */
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { spawn, spawnSync } from "node:child_process";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { formatRegisters, formatUptime } from "../src/commands/control.js";
import { controlRequest } from "../src/control/client.js";
import { controlDir, inspectSocket, socketPath } from "../src/control/paths.js";
import { MAX_REQUEST_LINE, parseRequest, type VmStatus } from "../src/control/protocol.js";
import { ControlServer, type ControlTarget } from "../src/control/server.js";
import { vmm } from "./helpers/spawn.js";

/** A target that records what it was asked and answers from fixed values. */
class ScriptedTarget implements ControlTarget {
  calls: string[] = [];
  paused = false;
  status(): VmStatus {
    return { name: "t", pid: process.pid, state: this.paused ? "paused" : "running", arch: "x86_64", startedAt: "x", uptimeMs: 5, memory: 1 << 20, cpus: 2, devices: ["d0"] };
  }
  pause(): void {
    this.calls.push("pause");
    if (this.paused) throw new Error("t is already paused");
    this.paused = true;
  }
  resume(): void {
    this.calls.push("resume");
    this.paused = false;
  }
  stop(): void {
    this.calls.push("stop");
  }
  stats() {
    return { machine: { pioExits: 7 }, devices: { d0: { reads: 1 } } };
  }
  registers() {
    return [{ id: 0, mpState: "runnable", groups: [{ name: "registers", values: { rip: "0x1000" } }] }];
  }
  /** Whether the scripted guest has enabled its power button. */
  buttonEnabled = true;
  powerdown() {
    this.calls.push("powerdown");
    if (this.paused) throw new Error("t is paused; its guest cannot shut down until it is resumed");
    return { enabled: this.buttonEnabled };
  }
  /** Resolves the next snapshot (tests answer it when they choose). */
  finishSnapshot: (() => void) | undefined;
  async snapshot(dir: string, then?: string) {
    this.calls.push(`snapshot ${dir} ${then ?? "-"}`);
    if (dir === "/refused") throw new Error("'/refused' is not empty");
    await new Promise<void>((resolve) => (this.finishSnapshot = resolve));
    return { dir, memoryBytes: 1 << 20, dataBytes: 4096, milliseconds: 3, state: "running" };
  }
  screenshot() {
    this.calls.push("screenshot");
    return { device: "vesa0", width: 2, height: 1, png: Buffer.from("not really a png").toString("base64") };
  }
}

const servers: ControlServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

function fresh() {
  const dir = path.join(mkdtempSync(path.join(tmpdir(), "vmm-ctl-")), "vmm");
  return { dir, file: socketPath(dir, "t") };
}

async function open(target = new ScriptedTarget()) {
  const { dir, file } = fresh();
  const server = await ControlServer.open(dir, file, "t", target);
  servers.push(server);
  return { dir, file, server, target };
}

/** Sends raw bytes, collects reply lines until `count` arrived or the server ends the connection. */
function exchange(file: string, text: string | Buffer, count: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const socket = connect(file);
    let data = "";
    const lines = () => data.split("\n").filter(Boolean);
    socket.setEncoding("utf8");
    socket.on("connect", () => socket.write(text));
    socket.on("data", (chunk: string) => {
      data += chunk;
      if (lines().length >= count) {
        socket.destroy();
        resolve(lines());
      }
    });
    socket.on("close", () => resolve(lines()));
    socket.on("error", reject);
  });
}

describe("parseRequest", () => {
  it("accepts a version-1 request with a known command and keeps its id", () => {
    expect(parseRequest('{"v":1,"id":7,"cmd":"status"}')).toEqual({ request: { v: 1, id: 7, cmd: "status", args: {} } });
    expect(parseRequest('{"v":1,"cmd":"stop"}')).toEqual({ request: { v: 1, id: undefined, cmd: "stop", args: {} } });
  });

  it("takes a command's arguments as fields beside cmd, checked against that command's table", () => {
    expect(parseRequest('{"v":1,"id":1,"cmd":"snapshot","dir":"/tmp/s"}')).toEqual({ request: { v: 1, id: 1, cmd: "snapshot", args: { dir: "/tmp/s" } } });
    expect(parseRequest('{"v":1,"cmd":"snapshot","dir":"/s","then":"stop"}')).toMatchObject({ request: { args: { dir: "/s", then: "stop" } } });
    expect(parseRequest('{"v":1,"id":2,"cmd":"snapshot"}')).toEqual({ error: "'snapshot' needs the argument 'dir'", id: 2 });
    expect(parseRequest('{"v":1,"cmd":"snapshot","dir":"rel/s"}')).toEqual({ error: "'snapshot': dir must be an absolute path" });
    expect(parseRequest('{"v":1,"cmd":"snapshot","dir":"/s","then":"reboot"}')).toEqual({ error: "'snapshot': then must be one of resume, pause, stop" });
    expect(parseRequest('{"v":1,"cmd":"status","dir":"/s"}')).toEqual({ error: "'status' takes no argument 'dir'" });
  });

  it("says what is wrong with anything else, with the id when it could be read", () => {
    expect(parseRequest("nope")).toEqual({ error: "malformed request: not JSON" });
    expect(parseRequest("[1]")).toEqual({ error: "malformed request: not a JSON object" });
    expect(parseRequest('{"v":1,"id":{},"cmd":"status"}')).toEqual({ error: "malformed request: id must be a number or a string" });
    expect(parseRequest('{"v":2,"id":3,"cmd":"status"}')).toEqual({ error: "unsupported protocol version 2 (this VM speaks 1)", id: 3 });
    expect(parseRequest('{"v":1,"id":"a","cmd":5}')).toEqual({ error: "malformed request: cmd must be a string", id: "a" });
    expect(parseRequest('{"v":1,"cmd":"reboot"}')).toMatchObject({ error: expect.stringMatching(/^unknown command 'reboot' \(known: status, pause/) });
  });
});

describe("ControlServer", () => {
  it("listens with mode 0600 in a 0700 directory and answers each request line in order, ids echoed", async () => {
    const { dir, file, target } = await open();
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(lstatSync(file).mode & 0o777).toBe(0o600);
    const replies = await exchange(file, '{"v":1,"id":1,"cmd":"pause"}\n{"v":1,"id":2,"cmd":"pause"}\n{"v":1,"id":3,"cmd":"stat"}\r\n{"v":1,"id":4,"cmd":"resume"}\n{"v":1,"id":5,"cmd":"registers"}\n', 5);
    expect(replies.map((l) => JSON.parse(l))).toEqual([
      { v: 1, id: 1, ok: true, state: "paused" },
      { v: 1, id: 2, ok: false, error: "t is already paused" },
      { v: 1, id: 3, ok: true, machine: { pioExits: 7 }, devices: { d0: { reads: 1 } } },
      { v: 1, id: 4, ok: true, state: "running" },
      { v: 1, id: 5, ok: true, vcpus: [{ id: 0, mpState: "runnable", groups: [{ name: "registers", values: { rip: "0x1000" } }] }] },
    ]);
    expect(target.calls).toEqual(["pause", "pause", "resume"]);
  });

  it("answers powerdown with its pid and whether the guest enabled the button, screenshot with the PNG bytes; a refusal is an error reply", async () => {
    const { file, target } = await open();
    target.buttonEnabled = false;
    const replies = await exchange(file, '{"v":1,"id":1,"cmd":"powerdown"}\n{"v":1,"id":2,"cmd":"screenshot"}\n{"v":1,"id":3,"cmd":"pause"}\n{"v":1,"id":4,"cmd":"powerdown"}\n', 4);
    expect(replies.map((l) => JSON.parse(l))).toEqual([
      { v: 1, id: 1, ok: true, pid: process.pid, enabled: false },
      { v: 1, id: 2, ok: true, device: "vesa0", width: 2, height: 1, png: Buffer.from("not really a png").toString("base64") },
      { v: 1, id: 3, ok: true, state: "paused" },
      { v: 1, id: 4, ok: false, error: "t is paused; its guest cannot shut down until it is resumed" },
    ]);
    expect(target.calls).toEqual(["powerdown", "screenshot", "pause", "powerdown"]);
  });

  it("answers a snapshot when it is written, and the requests after it in order behind it; a refusal is an error reply", async () => {
    const { file, target } = await open();
    const replies = exchange(
      file,
      '{"v":1,"id":1,"cmd":"snapshot","dir":"/s"}\n{"v":1,"id":2,"cmd":"status"}\n{"v":1,"id":3,"cmd":"snapshot","dir":"/refused","then":"stop"}\n',
      3,
    );
    while (!target.finishSnapshot) await new Promise((r) => setTimeout(r, 5));
    // The status request was served at once (it is in the calls before the snapshot finished), its reply waits.
    expect(target.calls).toEqual(["snapshot /s -", "snapshot /refused stop"]);
    target.finishSnapshot();
    expect((await replies).map((l) => JSON.parse(l))).toEqual([
      { v: 1, id: 1, ok: true, dir: "/s", memoryBytes: 1 << 20, dataBytes: 4096, milliseconds: 3, state: "running" },
      expect.objectContaining({ v: 1, id: 2, ok: true, name: "t" }),
      { v: 1, id: 3, ok: false, error: "'/refused' is not empty" },
    ]);
  });

  it("answers malformed and unknown lines with errors and keeps serving the connection", async () => {
    const { file } = await open();
    const replies = await exchange(file, 'garbage\n{"v":1,"id":9,"cmd":"format-disk"}\n\n{"v":1,"id":10,"cmd":"status"}\n', 3);
    expect(JSON.parse(replies[0]!)).toEqual({ v: 1, ok: false, error: "malformed request: not JSON" });
    expect(JSON.parse(replies[1]!)).toMatchObject({ id: 9, ok: false, error: expect.stringContaining("unknown command 'format-disk'") });
    expect(JSON.parse(replies[2]!)).toMatchObject({ id: 10, ok: true, name: "t", state: "running", cpus: 2, devices: ["d0"] });
  });

  it("ends a connection whose line grows past the limit, with an error, and goes on serving others", async () => {
    const { file } = await open();
    const replies = await exchange(file, Buffer.alloc(MAX_REQUEST_LINE * 4, 0x61), 1);
    expect(replies.map((l) => JSON.parse(l))).toEqual([{ v: 1, ok: false, error: `request line longer than ${MAX_REQUEST_LINE} bytes` }]);
    expect(await controlRequest("t", file, "status")).toMatchObject({ ok: true, name: "t" });
  });

  it("sends state changes to events subscribers", async () => {
    const { file, server } = await open();
    const lines = new Promise<string[]>((resolve) => {
      const socket = connect(file);
      let data = "";
      socket.setEncoding("utf8");
      socket.on("connect", () => socket.write('{"v":1,"id":1,"cmd":"events"}\n'));
      socket.on("data", (chunk: string) => {
        data += chunk;
        if (data.includes('{"v":1,"id":1,"ok":true,"subscribed":true}\n') && data.split("\n").length === 2) server.emit("paused", "t");
        if (data.split("\n").filter(Boolean).length === 2) {
          socket.destroy();
          resolve(data.split("\n").filter(Boolean));
        }
      });
    });
    const [reply, event] = await lines;
    expect(JSON.parse(reply!)).toEqual({ v: 1, id: 1, ok: true, subscribed: true });
    expect(JSON.parse(event!)).toMatchObject({ v: 1, event: "paused", name: "t", time: expect.stringMatching(/^\d{4}-/) });
  });

  it("refuses a name whose socket answers, in one line, and leaves that socket alone", async () => {
    const { dir, file } = await open();
    await expect(ControlServer.open(dir, file, "t", new ScriptedTarget())).rejects.toThrow(`a VM named 't' is already running (control socket ${file}); choose another --name`);
    expect(await inspectSocket(file)).toBe("live");
  });

  it("removes a dead VM's socket and takes the name; closing removes its own socket", async () => {
    const { dir, file } = fresh();
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // What a VM killed with SIGKILL leaves: its socket file, nobody listening.
    const r = spawnSync(process.execPath, ["-e", `require("net").createServer().listen(${JSON.stringify(file)}, () => process.kill(process.pid, "SIGKILL"))`]);
    expect(r.signal).toBe("SIGKILL");
    expect(await inspectSocket(file)).toBe("stale");
    const server = await ControlServer.open(dir, file, "t", new ScriptedTarget());
    expect(await inspectSocket(file)).toBe("live");
    await server.close();
    expect(existsSync(file)).toBe(false);
  });

  it("refuses to touch a path that is not a socket, naming it", async () => {
    const { dir, file } = fresh();
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(file, "precious");
    await expect(ControlServer.open(dir, file, "t", new ScriptedTarget())).rejects.toThrow(`'${file}' is in the way of VM 't''s control socket and is not a socket; it was left alone`);
    await expect(controlRequest("t", file, "status")).rejects.toThrow(`'${file}' is not a VM's control socket (not a socket); left alone`);
    expect(statSync(file).size).toBe(8);
  });

  it("refuses a socket directory other users can enter", async () => {
    const { dir, file } = fresh();
    mkdirSync(dir, { recursive: true });
    chmodSync(dir, 0o755);
    await expect(ControlServer.open(dir, file, "t", new ScriptedTarget())).rejects.toThrow(`control socket directory '${dir}' is accessible to other users (mode 755); chmod 700 it`);
  });
});

describe("control paths and formatting", () => {
  it("uses $XDG_RUNTIME_DIR/vmm, else ~/.vmm", () => {
    expect(controlDir({ XDG_RUNTIME_DIR: "/run/user/5", HOME: "/home/u" })).toBe("/run/user/5/vmm");
    expect(controlDir({ XDG_RUNTIME_DIR: "", HOME: "/home/u" })).toBe("/home/u/.vmm");
    expect(controlDir({ HOME: "/home/u" })).toBe("/home/u/.vmm");
  });

  it("refuses names that cannot be a socket file and paths too long for sun_path", () => {
    expect(socketPath("/run/vmm", "web 1")).toBe("/run/vmm/web 1.sock");
    for (const bad of ["a/b", ".hidden", ""]) expect(() => socketPath("/run/vmm", bad)).toThrow(/cannot name a control socket/);
    expect(() => socketPath("/run/vmm", "x".repeat(100))).toThrow(/longer than 107 bytes/);
  });

  it("formats registers like lkvm debug: plain values four to a line, composite ones one to a line", () => {
    const values = Object.fromEntries(["rax", "rbx", "rcx", "rdx", "rip"].map((r, i) => [r, `0x${i}`]));
    expect(
      formatRegisters({
        id: 1,
        mpState: "halted",
        groups: [
          { name: "registers", values },
          { name: "segments", values: { cs: "sel=0x10 base=0x0", ss: "sel=0x18 base=0x0" } },
        ],
      }),
    ).toEqual(["vCPU 1 (halted)", "  registers:", "    rax=0x0  rbx=0x1  rcx=0x2  rdx=0x3", "    rip=0x4", "  segments:", "    cs   sel=0x10 base=0x0", "    ss   sel=0x18 base=0x0"]);
  });

  it("formats uptimes for a column", () => {
    expect([0, 59_999, 60_000, 3_599_000, 3_600_000, 90_061_000].map(formatUptime)).toEqual(["0s", "59s", "1m00s", "59m59s", "1h00m", "1d01h"]);
  });
});

describe("vmm stop --timeout", () => {
  /** A process that answers every request as a VM does (with `reply`'s fields) and then never ends: a wedged vmm run. */
  async function wedged(reply: (cmd: string) => Record<string, unknown>, endsOnStop = false) {
    const xdg = mkdtempSync(path.join(tmpdir(), "vmm-stop-"));
    const file = path.join(xdg, "vmm", "wedged.sock");
    mkdirSync(path.dirname(file), { mode: 0o700 });
    const replies = JSON.stringify({ powerdown: reply("powerdown"), stop: reply("stop") });
    const script = `const r = ${replies}; require("net").createServer((c) => c.on("data", (d) => { const { cmd } = JSON.parse(d); c.write(JSON.stringify({ v: 1, id: 1, ...r[cmd], pid: process.pid }) + "\\n"); require("fs").appendFileSync(${JSON.stringify(file)} + ".log", cmd + "\\n"); if (cmd === "stop" && ${endsOnStop}) setTimeout(() => process.exit(0), 50); })).listen(${JSON.stringify(file)}, () => console.log("up"))`;
    const child = spawn(process.execPath, ["-e", script]);
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on("exit", (_, signal) => resolve(signal)));
    await new Promise((resolve) => child.stdout.once("data", resolve));
    return { xdg, file, child, exited, asked: () => readFileSync(`${file}.log`, "utf8").trim().split("\n") };
  }

  it("presses the button, waits, stops by force, and kills a VM process that has not ended after the timeout again; exits 1", async () => {
    const vm = await wedged(() => ({ ok: true, enabled: false }));
    const started = Date.now();
    const r = vmm(["stop", "wedged", "--timeout", "0.3"], { env: { XDG_RUNTIME_DIR: vm.xdg } });
    expect(Date.now() - started).toBeGreaterThanOrEqual(600);
    expect([r.status, r.stdout, r.stderr]).toEqual([
      1,
      "",
      "vmm: wedged: did not power off within 0.3 s (its guest has not enabled the ACPI power button); stopping it\n" +
        `vmm: wedged (pid ${vm.child.pid}) did not stop within 0.3 s; killed it (SIGKILL)\n`,
    ]);
    expect(vm.asked()).toEqual(["powerdown", "stop"]);
    expect(await vm.exited).toBe("SIGKILL");
    expect(existsSync(vm.file)).toBe(false);
    expect(vmm(["stop", "wedged", "--timeout", "soon"], { env: { XDG_RUNTIME_DIR: vm.xdg } })).toMatchObject({ status: 2, stderr: "vmm: error: --timeout must be a number of seconds, not 'soon'\n" });
  });

  it("--force skips the button; a refused button (paused, an older vmm run) is not waited for", async () => {
    const forced = await wedged(() => ({ ok: true }));
    const r = vmm(["stop", "wedged", "--force", "--timeout", "0.2"], { env: { XDG_RUNTIME_DIR: forced.xdg } });
    expect([r.status, r.stderr]).toEqual([1, `vmm: wedged (pid ${forced.child.pid}) did not stop within 0.2 s; killed it (SIGKILL)\n`]);
    expect(forced.asked()).toEqual(["stop"]);
    const old = await wedged((cmd) => (cmd === "powerdown" ? { ok: false, error: "unknown command 'powerdown' (known: status, pause, resume, stop, stat, registers, events)" } : { ok: true }), true);
    const started = Date.now();
    const o = vmm(["stop", "wedged", "--timeout", "5"], { env: { XDG_RUNTIME_DIR: old.xdg } });
    expect([o.status, o.stdout, o.stderr]).toEqual([
      0,
      "wedged: stopped\n",
      "vmm: wedged: no graceful shutdown: unknown command 'powerdown' (known: status, pause, resume, stop, stat, registers, events); stopping it\n",
    ]);
    expect(old.asked()).toEqual(["powerdown", "stop"]);
    expect(Date.now() - started).toBeLessThan(4000); // neither wait ran its 5 s
  });

  it("reports a guest that powers off after the wait, while the forced stop is on its way, as powered off (exit 0)", async () => {
    const xdg = mkdtempSync(path.join(tmpdir(), "vmm-stop-"));
    const file = path.join(xdg, "vmm", "late.sock");
    mkdirSync(path.dirname(file), { mode: 0o700 });
    // Answers the button, then acts on it late: the socket goes at once (as vmm run removes it while it ends) and
    // the process ends 0.45 s later, after the 0.3 s wait and before the second one ran out.
    const script = `const s = require("net").createServer((c) => c.on("data", () => { c.end(JSON.stringify({ v: 1, id: 1, ok: true, enabled: true, pid: process.pid }) + "\\n"); s.close(); require("fs").rmSync(${JSON.stringify(file)}, { force: true }); setTimeout(() => process.exit(0), 450); })).listen(${JSON.stringify(file)}, () => console.log("up"))`;
    const child = spawn(process.execPath, ["-e", script]);
    await new Promise((resolve) => child.stdout.once("data", resolve));
    const r = vmm(["stop", "late", "--timeout", "0.3"], { env: { XDG_RUNTIME_DIR: xdg } });
    expect([r.status, r.stdout, r.stderr]).toEqual([
      0,
      "late: powered off (after the wait, before the forced stop reached it)\n",
      "vmm: late: did not power off within 0.3 s (its guest did not act on the power button); stopping it\n",
    ]);
  });
});
