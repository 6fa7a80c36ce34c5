// Guest-driven virtio-net throughput (issue #17: frames/s between two VMs and to a tap). A freestanding guest
// driver (bench/guest/virtio-net-bench.c) runs in `vmm run` processes, as a user runs it, and keeps its TX ring
// full of 64-byte or 1514-byte frames, or keeps every RX buffer posted and counts what arrives, polling the used
// rings with interrupts off. The host reads each guest's COM1 lines with their arrival times.
//
// - VM to VM: two `vmm run` processes linked by the socket backend (a Unix stream socket, length-prefixed frames).
//   The receiver's rate is its frames over the time from its first frame to its last one (the host's wall time
//   from the receiver's "first" line to its "done" line, taken down to the last frame by the guest's TSC share);
//   frames dropped are the sender's minus the receiver's. The yardstick, in the same run: the same frames through
//   the same SocketNetBackend between two host processes with no VM (frames over the reader's first-to-last time).
// - VM to a tap (needs CAP_NET_ADMIN and `unshare`; skipped loudly otherwise): in a network namespace of its own,
//   the guest transmits into a tap and the kernel's counters of the interface say what arrived (frames over the
//   guest's "start" to "done"); then a host packet socket (python3's AF_PACKET) sends frames into the tap and the
//   guest counts them. Yardsticks: TapNetBackend writing the same frames to a tap of its own with no VM, and
//   reading what the same packet socket sends.
//
// VM to VM runs over the socket backend on the JS thread (its stream has no frame fd for a worker) and over the
// datagram backend on both data planes; the tap cases run on both too: the workers (`vmm run`'s default over a
// datagram socket or a tap) and the JS thread (`dataplane=main`). Run after a build of @vmm/cli too: `pnpm --filter @vmm/device-virtio bench`.
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { DgramNetBackend, SocketNetBackend, TapNetBackend } from "../dist/index.js";

const scriptPath = fileURLToPath(import.meta.url);
const here = dirname(scriptPath);
const VMM = join(here, "..", "..", "cli", "bin", "vmm.js");
const SCALE = Number(process.env.BENCH_SCALE ?? 1);
/** Frames per case: the guests' rates set the time (a few seconds per case and direction at scale 1 here). */
const CASES = [
  { name: "64 B", frame: 64, frames: 100000 },
  { name: "1514 B", frame: 1514, frames: 50000 },
].map((c) => ({ ...c, frames: Math.max(100, Math.round(c.frames * SCALE)) }));
/**
 * virtio-net's data planes per part: device options added to `--device virtio-net,...`, the figure's label (none
 * for `vmm run`'s default), and whether the guests' busy share is recorded. On the JS thread, which is also the
 * vCPU's, the device's work takes the vCPU out of KVM_RUN at moments the guest cannot tell from its own work, so
 * there the share counts VMM time as the guest's (printed, not recorded). On the workers the vCPU keeps running,
 * so a share near 100% says the (emulated) guest limits the rate.
 */
const MAIN = { name: "main", options: ",dataplane=main", label: " (main)", recordBusy: false };
const WORKER = { name: "worker", options: "", label: "", recordBusy: true };
const SOCKET_PLANES = [{ ...MAIN, options: "", label: "" }];
const TAP_PLANES = [WORKER, MAIN];
const SENDER_MAC = "52:54:00:00:00:01";
const RECEIVER_MAC = "52:54:00:00:00:02"; // the guest driver's fixed destination
const ETHERTYPE = 0x88b5;
const TAP = "vmmnb0";
/**
 * The packet socket's pace towards the guest: above what the guest takes today (about 26,000 frames/s), so the
 * guest's receive rate is measured under overload over a window of seconds, not over the few milliseconds an
 * unpaced burst would fill the tap's queue in; the host reader (the yardstick) gets an unpaced burst instead.
 * Raise it when a data plane takes more.
 */
const OFFERED_PER_S = 100_000;
const REF_TAP = "vmmnbref0";
const TITLE = "virtio-net driven by guests in vmm run processes (polled rings): VM to VM over the socket and datagram backends and VM to a tap, beside the backends' own host rates";

/** The frame the guest driver sends with sequence number `seq` (see virtio-net-bench.c). */
function benchFrame(size, seq) {
  const f = new Uint8Array(size);
  f.set([0x52, 0x54, 0, 0, 0, 2], 0);
  f.set([0x52, 0x54, 0, 0, 0, 1], 6);
  f[12] = ETHERTYPE >> 8;
  f[13] = ETHERTYPE & 0xff;
  new DataView(f.buffer).setUint32(14, seq, true);
  for (let i = 18; i < size; i++) f[i] = (i + 12) & 0xff; // the low byte of its offset behind the 12-byte header
  return f;
}

const seconds = (from, to) => Number(to - from) / 1e9;
/** Host yardsticks run this many times; the median counts. */
const REFERENCE_ROUNDS = 3;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function rounds(measure) {
  const results = [];
  for (let i = 0; i < REFERENCE_ROUNDS; i++) results.push(await measure());
  return results;
}

/** One `vmm run` of the guest driver: its COM1 lines with the host time each arrived. */
class GuestProcess {
  lines = [];
  stderr = "";
  waiters = [];
  constructor(name, elf, device, runtimeDir) {
    this.name = name;
    this.child = spawn(process.execPath, [VMM, "run", "-k", elf, "-m", "64", "--name", name, "--device", device], {
      env: { ...process.env, XDG_RUNTIME_DIR: runtimeDir },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let partial = "";
    this.child.stdout.on("data", (chunk) => {
      const at = process.hrtime.bigint();
      partial += chunk.toString("latin1");
      let nl;
      while ((nl = partial.indexOf("\n")) >= 0) {
        this.lines.push({ text: partial.slice(0, nl), at });
        partial = partial.slice(nl + 1);
      }
      this.wake();
    });
    this.child.stderr.on("data", (chunk) => (this.stderr += chunk));
    this.child.stdin.on("error", () => {}); // a vmm that already exited: its exit status tells why
    this.exited = new Promise((resolve) => this.child.on("exit", (code, signal) => (this.wake(), resolve(code ?? signal))));
    this.child.on("exit", () => (this.gone = true));
  }
  wake() {
    for (const w of this.waiters.splice(0)) w();
  }
  /** The first line from index `from` on that matches `re`, waiting up to `ms`. */
  async line(re, from = 0, ms = 60_000) {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.lines.findIndex((l, k) => k >= from && re.test(l.text));
      if (i >= 0) return { ...this.lines[i], index: i, match: re.exec(this.lines[i].text) };
      const fail = this.lines.find((l) => l.text.startsWith("FAIL"));
      if (fail || this.gone || Date.now() > deadline) {
        throw new Error(`${this.name}: no line matching ${re} (${fail ? fail.text : this.gone ? "vmm exited" : "timed out"})\n${this.lines.map((l) => l.text).join("\n")}\n${this.stderr}`);
      }
      await new Promise((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }
  send(text) {
    this.child.stdin.write(`${text}\n`);
  }
  async quit() {
    if (!this.gone) this.send("q");
    const timer = setTimeout(() => this.child.kill("SIGTERM"), 10_000);
    const status = await this.exited;
    clearTimeout(timer);
    if (status !== 0) throw new Error(`${this.name}: vmm run ended with ${status}\n${this.stderr}`);
  }
}

/**
 * Runs one receive case on `receiver` while `transmit()` sends: resolves with the frames received, the bad ones,
 * the seconds from its first frame to its last and the share of those the guest was busy (not waiting for frames).
 * Once `transmit()` resolved the receiver is told to finish when its link has gone quiet.
 */
async function receiveCase(receiver, c, transmit) {
  const from = receiver.lines.length;
  receiver.send(`r ${c.frames} ${c.frame}`);
  await receiver.line(/^start$/, from);
  const sent = await transmit();
  receiver.send("s"); // harmless when it already has every frame
  const first = await receiver.line(/^first$/, from, 30_000);
  const done = await receiver.line(/^done (\d+) (\d+) (\d+) (\d+) (\d+)$/, from, 60_000);
  const [received, bad, waiting, active, total] = done.match.slice(1).map(Number);
  // The host's time from "first" to "done", taken down to the last frame by the guest's own TSC share.
  const activeSeconds = seconds(first.at, done.at) * (total ? active / total : 0);
  return { sent, received, bad, seconds: activeSeconds, busy: active ? 1 - waiting / active : 1 };
}

/**
 * The guest's "t" case: resolves with the frames sent, the host time from its "start" to its "done" and the share
 * of the guest's time not spent waiting for the device.
 */
async function transmitCase(sender, c) {
  const from = sender.lines.length;
  sender.send(`t ${c.frame} ${c.frames}`);
  const start = await sender.line(/^start$/, from);
  const done = await sender.line(/^done (\d+) (\d+) (\d+)$/, from);
  const [sent, waiting, total] = done.match.slice(1).map(Number);
  return { sent, seconds: seconds(start.at, done.at), busy: total ? 1 - waiting / total : 1 };
}

const percent = (share) => `${(share * 100).toFixed(0)}%`;

/**
 * How much of the case the guests spent on their own work rather than waiting for the device (see MAIN and WORKER: only
 * where the device's work does not stop the vCPU).
 */
function busyFigures(what, plane, txBusy, rxBusy) {
  if (!plane.recordBusy) return [];
  const note = "the guest's TSC outside its polling of an unchanged used ring, as a share of the case";
  return [
    { metric: `${what} sending guest busy${plane.label}`, value: txBusy * 100, unit: "%", note },
    { metric: `${what} receiving guest busy${plane.label}`, value: rxBusy * 100, unit: "%", note },
  ];
}

// --- host yardsticks -------------------------------------------------------------------------------------------

/**
 * In a child process: connects a SocketNetBackend to `path`, sends `frames` frames of `size` bytes and stays
 * until killed (the backend, like the VMM's, does not wait for the socket: closing it would drop what is queued).
 */
async function socketWriter(path, size, frames) {
  const backend = await SocketNetBackend.open(path, "connect");
  backend.open(() => {});
  for (let i = 0; i < frames; i++) backend.send(benchFrame(size, i));
  setInterval(() => {}, 1 << 30);
}

/**
 * The socket backend between two host processes: the frames the reader counts over its first-to-last frame time
 * (it stops at every frame, or 500 ms after frames stopped coming).
 */
async function hostSocketRate(dir, c) {
  const path = join(dir, `ref-${c.frame}.sock`);
  const reader = await SocketNetBackend.open(path, "listen");
  let received = 0;
  let first = 0n;
  let last = 0n;
  let finish;
  const finished = new Promise((resolve) => (finish = resolve));
  let settle = setTimeout(finish, 20_000);
  reader.open(() => {
    last = process.hrtime.bigint();
    if (!received++) first = last;
    if (received === c.frames) finish();
    else if (received % 256 === 1) {
      clearTimeout(settle);
      settle = setTimeout(finish, 500);
    }
  });
  const writer = spawn(process.execPath, [scriptPath, "--socket-writer", path, String(c.frame), String(c.frames)], { stdio: "inherit" });
  const writerGone = new Promise((resolve) => writer.on("exit", resolve));
  await finished;
  clearTimeout(settle);
  writer.kill();
  await writerGone;
  await reader.close();
  if (!received) throw new Error(`host socket ${c.name}: no frame arrived`);
  return { received, seconds: seconds(first, last) };
}

// --- the parts ---------------------------------------------------------------------------------------------------

/**
 * The links between two VMs: the socket backend (`vmm run`'s default, on the JS thread: its stream has no frame fd
 * for a worker) and the datagram backend on both planes. `devices(path)` gives the receiver's and the sender's
 * `--device` values; a figure's label names the link and plane unless they are `vmm run`'s defaults.
 */
const LINKS = [
  {
    name: "socket",
    planes: SOCKET_PLANES.map((p) => ({ ...p, column: "socket", figureLabel: p.label })),
    devices: (path) => [`backend=socket,path=${path},role=listen`, `backend=socket,path=${path},role=connect`],
  },
  {
    name: "dgram",
    planes: TAP_PLANES.map((p) => ({ ...p, column: `dgram ${p.name}`, figureLabel: p === WORKER ? " (dgram)" : " (dgram, main)" })),
    devices: (path) => [`backend=dgram,local=${path}.rx,remote=${path}.tx`, `backend=dgram,local=${path}.tx,remote=${path}.rx`],
  },
];

async function vmToVm(elf, dir, rows, figures) {
  for (const c of CASES) {
    const hostRate = median((await rounds(() => hostSocketRate(dir, c))).map((h) => h.received / h.seconds));
    const row = { case: `VM to VM ${c.name}`, frames: c.frames, "host frames/s": Math.round(hostRate) };
    for (const link of LINKS) {
      for (const plane of link.planes) {
        const [rxDevice, txDevice] = link.devices(join(dir, `link-${c.frame}-${link.name}-${plane.name}`));
        const receiver = new GuestProcess(`nb-rx-${process.pid}`, elf, `virtio-net,${rxDevice},mac=${RECEIVER_MAC}${plane.options}`, dir);
        await receiver.line(/^ready/);
        const sender = new GuestProcess(`nb-tx-${process.pid}`, elf, `virtio-net,${txDevice},mac=${SENDER_MAC}${plane.options}`, dir);
        let tx;
        try {
          await sender.line(/^ready/);
          const r = await receiveCase(receiver, c, async () => (tx = await transmitCase(sender, c)).sent);
          if (r.bad) throw new Error(`VM to VM ${c.name} (${link.name}, ${plane.name}): ${r.bad} frames of the wrong length arrived`);
          const rate = r.received / r.seconds;
          const drops = r.sent - r.received;
          const col = plane.column;
          const label = plane.figureLabel;
          row[`${col} guest tx frames/s`] = Math.round(tx.sent / tx.seconds);
          row[`${col} rx frames/s`] = Math.round(rate);
          row[`${col} dropped`] = drops;
          row[`${col} /host`] = (rate / hostRate).toFixed(3);
          row[`${col} tx/rx guest busy`] = `${percent(tx.busy)}/${percent(r.busy)}`;
          figures.push(
            {
              metric: `VM to VM ${c.name} frames received${label}`,
              value: rate,
              unit: "frames/s",
              reference: { name: "socket backend between host processes", value: hostRate },
              note: `${link.name} backend; receiver's first to last frame; reference: the same frames through SocketNetBackend between two host processes`,
            },
            { metric: `VM to VM ${c.name} frames dropped${label}`, value: drops, unit: "frames", note: `of ${r.sent} sent` },
            { metric: `VM to VM ${c.name} guest transmit${label}`, value: tx.sent / tx.seconds, unit: "frames/s", note: "sender's start to done: frames the device took from the TX ring" },
            ...busyFigures(`VM to VM ${c.name}`, { ...plane, label }, tx.busy, r.busy),
          );
        } finally {
          await Promise.allSettled([sender.quit(), receiver.quit()]);
        }
      }
    }
    rows.push(row);
  }
}

// --- transmit at queue depth 1: the time a frame spends outside the guest ---------------------------------------

/** Frames of the queue-depth-1 case (each waits for its predecessor's completion). */
const QD1_FRAMES = Math.max(200, Math.round(5000 * SCALE));

/**
 * The guest transmits one 64-byte frame at a time over the datagram backend to a reader in this process and polls
 * for each completion: its TSC share spent waiting, times the host's wall time, per frame, is the time the frame
 * spent outside the guest (the doorbell, the device's thread and its write, the used entry). Recorded for the
 * workers, where the vCPU never leaves KVM_RUN for the device (as for virtio-blk); the JS thread's rate is printed.
 */
async function transmitQd1(elf, dir, rows, figures) {
  const row = { case: "transmit 64 B, queue depth 1", frames: QD1_FRAMES };
  for (const plane of TAP_PLANES) {
    const [vmPath, hostPath] = [join(dir, `qd1-vm-${plane.name}`), join(dir, `qd1-host-${plane.name}`)];
    const host = DgramNetBackend.open(hostPath, vmPath);
    let received = 0;
    host.open(() => received++);
    const vm = new GuestProcess(`nb-qd1-${process.pid}`, elf, `virtio-net,backend=dgram,local=${vmPath},remote=${hostPath},mac=${SENDER_MAC}${plane.options}`, dir);
    try {
      await vm.line(/^ready/);
      const from = vm.lines.length;
      vm.send(`t 64 ${QD1_FRAMES} 1`);
      const start = await vm.line(/^start$/, from);
      const done = await vm.line(/^done (\d+) (\d+) (\d+)$/, from, 120_000);
      const [sent, waiting, total] = done.match.slice(1).map(Number);
      const wall = seconds(start.at, done.at);
      const outsideUs = ((wall * waiting) / total / sent) * 1e6;
      row[`${plane.name} frames/s`] = Math.round(sent / wall);
      row[`${plane.name} us/frame`] = ((wall / sent) * 1e6).toFixed(0);
      if (plane === WORKER) row[`${plane.name} us outside`] = outsideUs.toFixed(0);
      figures.push({ metric: `transmit 64 B QD1 guest${plane.label}`, value: sent / wall, unit: "frames/s", note: "one frame in flight, datagram backend to a reader in the bench process" });
      if (plane === WORKER) {
        figures.push({
          metric: "transmit 64 B QD1 time outside the guest per frame",
          value: outsideUs,
          unit: "us",
          goal: { direction: "<=", limit: 40, of: "value", source: "issue #17" },
          note: "the guest's TSC share spent polling an unchanged used index, times the host's wall time, per frame",
        });
      }
      for (const end = Date.now() + 10_000; received < sent && Date.now() < end; ) await new Promise((r) => setTimeout(r, 10));
      if (received < sent) throw new Error(`transmit QD1 (${plane.name}): ${received} of ${sent} frames reached the host reader`);
    } finally {
      await vm.quit().catch(() => {});
      await host.close();
    }
  }
  rows.push(row);
}

// --- VM to a tap (in a network namespace of its own: `unshare -n`, so the taps are gone with it) ----------------

/**
 * Sends frames into a tap's interface through a packet socket (python3's AF_PACKET): `n` frames of `size` bytes
 * in the guest driver's layout, at most `rate` frames/s (0: as fast as it can). Prints "<sent> <seconds>"; a send
 * the kernel refuses (ENOBUFS) is not counted.
 */
const PACKET_SENDER = `
import socket, struct, sys, time
ifname, size, n, rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
f = bytearray(size)
f[0:6] = bytes([0x52, 0x54, 0, 0, 0, 2]); f[6:12] = bytes([0x52, 0x54, 0, 0, 0, 0x10])
f[12:14] = bytes([0x88, 0xb5])
for i in range(18, size): f[i] = (i + 12) & 0xff
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((ifname, 0))
sent = 0
t0 = time.perf_counter()
for seq in range(n):
    if rate and seq % 64 == 0:
        while time.perf_counter() - t0 < seq / rate: pass
    struct.pack_into("<I", f, 14, seq)
    try:
        s.send(f); sent += 1
    except OSError:
        pass
print(sent, time.perf_counter() - t0)
`;

function ipLink(...args) {
  const r = spawnSync("ip", ["link", ...args], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`ip link ${args.join(" ")}: ${r.stderr || r.error?.message}`);
}

/** Brings a tap up without IPv6, so the kernel sends nothing of its own into it. */
async function tapUp(ifname) {
  await writeFile(`/proc/sys/net/ipv6/conf/${ifname}/disable_ipv6`, "1").catch(() => {});
  ipLink("set", ifname, "up");
}

/** The frames the kernel received from the tap's fd (the interface's rx_packets), from /proc/net/dev of this namespace. */
async function tapReceived(ifname) {
  const line = (await readFile("/proc/net/dev", "utf8")).split("\n").find((l) => l.trim().startsWith(`${ifname}:`));
  if (!line) throw new Error(`no interface ${ifname} in /proc/net/dev`);
  return Number(line.split(":")[1].trim().split(/\s+/)[1]);
}

/** Runs the packet-socket sender to completion. */
function packetSend(ifname, size, n, rate = 0) {
  return new Promise((resolve, reject) => {
    const child = spawn("python3", ["-c", PACKET_SENDER, ifname, String(size), String(n), String(rate)], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on("exit", (code) => {
      const m = /^(\d+) ([\d.e-]+)/.exec(out);
      if (code !== 0 || !m) reject(new Error(`python3 packet sender: exit ${code}: ${err}`));
      else resolve({ sent: Number(m[1]), seconds: Number(m[2]) });
    });
  });
}

/** The host's own rates through TapNetBackend with no VM: writing frames into a tap, and reading what a packet socket sends. */
async function hostTapRates(c) {
  const backend = TapNetBackend.open(REF_TAP);
  let received = 0;
  let first = 0n;
  let last = 0n;
  backend.open(() => {
    last = process.hrtime.bigint();
    if (!received++) first = last;
  });
  try {
    await tapUp(REF_TAP);
    const before = await tapReceived(REF_TAP);
    const frame = benchFrame(c.frame, 0);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < c.frames; i++) backend.send(frame);
    const txSeconds = seconds(t0, process.hrtime.bigint());
    const delivered = (await tapReceived(REF_TAP)) - before;
    const sender = await packetSend(REF_TAP, c.frame, c.frames);
    await new Promise((resolve) => setTimeout(resolve, 200)); // what the kernel still queues
    return { tx: delivered / txSeconds, rx: received / seconds(first, last), rxOffered: sender.sent / sender.seconds };
  } finally {
    await backend.close();
  }
}

/** In the namespace: the guest transmits into a tap, then receives from a packet socket, per case. */
async function tapPart(elf, dir) {
  const rows = [];
  const figures = [];
  for (const c of CASES) {
    const runs = await rounds(() => hostTapRates(c));
    const host = { tx: median(runs.map((r) => r.tx)), rx: median(runs.map((r) => r.rx)), rxOffered: median(runs.map((r) => r.rxOffered)) };
    const row = { case: `VM and tap ${c.name}`, frames: c.frames, "host tx frames/s": Math.round(host.tx), "host rx frames/s": Math.round(host.rx) };
    for (const plane of TAP_PLANES) {
      const vm = new GuestProcess(`nb-tap-${process.pid}`, elf, `virtio-net,backend=tap,ifname=${TAP},mac=${RECEIVER_MAC}${plane.options}`, dir);
      try {
        await vm.line(/^ready/);
        await tapUp(TAP);
        const before = await tapReceived(TAP);
        const tx = await transmitCase(vm, c);
        const delivered = (await tapReceived(TAP)) - before;
        const txRate = delivered / tx.seconds;
        const rx = await receiveCase(vm, c, async () => (await packetSend(TAP, c.frame, c.frames, OFFERED_PER_S)).sent);
        if (rx.bad) throw new Error(`tap to VM ${c.name}: ${rx.bad} frames of the wrong length arrived`);
        const rxRate = rx.received / rx.seconds;
        Object.assign(row, {
          [`${plane.name} tx frames/s`]: Math.round(txRate),
          [`${plane.name} tx MB/s`]: ((txRate * c.frame) / 1e6).toFixed(1),
          [`${plane.name} tx dropped`]: tx.sent - delivered,
          [`${plane.name} tx /host`]: (txRate / host.tx).toFixed(3),
          [`${plane.name} rx frames/s`]: Math.round(rxRate),
          [`${plane.name} rx dropped`]: rx.sent - rx.received,
          [`${plane.name} rx /host`]: (rxRate / host.rx).toFixed(3),
          [`${plane.name} tx/rx guest busy`]: `${percent(tx.busy)}/${percent(rx.busy)}`,
        });
        figures.push(
          {
            metric: `VM to tap ${c.name} frames${plane.label}`,
            value: txRate,
            unit: "frames/s",
            reference: { name: "TapNetBackend writing with no VM", value: host.tx },
            note: "frames the tap's interface counted (rx_packets) over the guest's start to done",
          },
          { metric: `VM to tap ${c.name} frames dropped${plane.label}`, value: tx.sent - delivered, unit: "frames", note: `of ${tx.sent} sent` },
          {
            metric: `tap to VM ${c.name} frames received${plane.label}`,
            value: rxRate,
            unit: "frames/s",
            reference: { name: "TapNetBackend reading with no VM", value: host.rx },
            note: `a python3 packet socket offers ${OFFERED_PER_S} frames/s to the guest (to the reference as fast as it can: ${Math.round(host.rxOffered)} frames/s); the guest's first to last frame`,
          },
          { metric: `tap to VM ${c.name} frames dropped${plane.label}`, value: rx.sent - rx.received, unit: "frames", note: `of ${rx.sent} the packet socket sent at ${OFFERED_PER_S} frames/s` },
          ...busyFigures(`VM and tap ${c.name}`, plane, tx.busy, rx.busy),
        );
      } finally {
        await vm.quit();
      }
    }
    rows.push(row);
  }
  return { rows, figures };
}

/** Why the tap part cannot run here, or undefined. */
function tapUnavailable() {
  if (!existsSync("/dev/net/tun")) return "no /dev/net/tun";
  const u = spawnSync("unshare", ["-n", "ip", "tuntap", "add", "dev", "vmmnbprobe", "mode", "tap"], { encoding: "utf8" });
  if (u.error) return "util-linux `unshare` or iproute2 `ip` is missing";
  if (u.status !== 0) return `cannot create a tap in a network namespace (needs CAP_NET_ADMIN): ${u.stderr.trim()}`;
  const p = spawnSync("python3", ["-c", "import socket; socket.AF_PACKET"], { encoding: "utf8" });
  if (p.status !== 0) return "python3 (for the AF_PACKET sender) is missing";
  return undefined;
}

if (process.argv[2] === "--socket-writer") {
  const [path, size, frames] = process.argv.slice(3);
  await socketWriter(path, Number(size), Number(frames));
} else if (process.argv[2] === "--tap-part") {
  // The last line of stdout carries the figures to the parent.
  const result = await tapPart(process.argv[3], process.argv[4]);
  console.log(JSON.stringify(result));
  process.exit(0);
} else {
  const [{ recordBench, recordSkip }, { buildGuest }, { kvmAvailability }] = await Promise.all([
    import("@vmm/bench-kit"),
    import("@vmm/guest-kit"),
    import("@vmm/kvm-native"),
  ]);
  const skip = (reason) => {
    console.log(`virtio-net guest bench SKIPPED: ${reason}`);
    recordSkip({ package: "@vmm/device-virtio", name: "guest-net", title: TITLE, reason });
    process.exit(0);
  };
  const kvm = kvmAvailability();
  if (!kvm.ok) skip(kvm.reason);
  if (!existsSync(join(here, "..", "..", "cli", "dist", "main.js"))) skip("@vmm/cli is not built (pnpm turbo run build --filter=@vmm/cli)");
  const dir = await mkdtemp(join(tmpdir(), "vmm-net-bench-"));
  try {
    const elf = await buildGuest("virtio-net-bench", { format: "elf", source: join(here, "guest", "virtio-net-bench.c") });
    const rows = [];
    const tapRows = [];
    const figures = [];
    await vmToVm(elf, dir, rows, figures);
    const qd1Rows = [];
    await transmitQd1(elf, dir, qd1Rows, figures);
    const noTap = tapUnavailable();
    if (noTap) {
      console.warn(`!!! virtio-net guest bench: the tap part SKIPPED: ${noTap}`);
      figures[0].note += `; the tap part was skipped: ${noTap}`;
    } else {
      const child = spawnSync("unshare", ["-n", process.execPath, scriptPath, "--tap-part", elf, dir], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], timeout: 120_000 });
      const last = child.stdout?.trim().split("\n").pop();
      if (child.status !== 0 || !last?.startsWith("{")) throw new Error(`the tap part failed (${child.status ?? child.error?.message}):\n${child.stdout}`);
      const tap = JSON.parse(last);
      tapRows.push(...tap.rows);
      figures.push(...tap.figures);
    }
    console.log("virtio-net driven by guests in vmm run processes (polled rings): VM to VM over the socket backend (JS thread) and the datagram backend (workers, JS thread)");
    console.table(rows);
    if (tapRows.length) {
      console.log("VM to a tap (guest transmits, the interface counts) and a packet socket to the VM through the tap (guest receives)");
      console.table(tapRows);
    }
    console.log("virtio-net transmit at queue depth 1 over the datagram backend (worker and JS thread), with the time a frame spends outside the guest on the worker");
    console.table(qd1Rows);
    console.log("guest busy: the guests' TSC outside polling an unchanged used ring; on the main plane it includes the device's work on the vCPU's thread");
    recordBench({ package: "@vmm/device-virtio", name: "guest-net", title: TITLE, rows: figures });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
