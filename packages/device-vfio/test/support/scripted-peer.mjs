// A scripted vfio-user server in a worker thread: the client under test blocks the main thread inside each call,
// so its peer must run elsewhere. It speaks raw bytes only (the test builds every message by hand) and runs
// the steps in workerData in order, recording what the client sent; fds are process-wide, so the socket and
// any fd it receives are used here by number.
import { closeSync, readSync, writeSync } from "node:fs";
import { parentPort, workerData } from "node:worker_threads";
import { memfdCreate, recvFds, sendFds, socketPair, waitReadable } from "@vmm/host-io";

const { socket, steps, timeoutMs } = workerData;
const transcript = [];
const received = []; // every fd the client sent, in order
const probes = new Map(); // probe name -> the end this peer kept
let pending = new Uint8Array(0);
let lastId = 0;

const concat = (a, b) => {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
};

function fill() {
  if (!waitReadable(socket, timeoutMs)) throw new Error(`no bytes from the client within ${timeoutMs} ms`);
  const buffer = new Uint8Array(2 * 1024 * 1024);
  const got = recvFds(socket, buffer, 253);
  if (got === null) return;
  if (got.bytes === 0) throw new Error("the client closed the connection");
  pending = concat(pending, buffer.subarray(0, got.bytes));
  received.push(...got.fds);
  return got.fds.length;
}

function recvMessage() {
  let fdCount = 0;
  while (pending.length < 16) fdCount += fill() ?? 0;
  const size = new DataView(pending.buffer, pending.byteOffset).getUint32(4, true);
  while (pending.length < size) fdCount += fill() ?? 0;
  const bytes = pending.slice(0, size);
  pending = pending.slice(size);
  // A reply answers the client's latest command, not its replies to this peer's DMA requests.
  const view = new DataView(bytes.buffer);
  if ((view.getUint32(8, true) & 0xf) === 0) lastId = view.getUint16(0, true);
  return { bytes, fdCount };
}

function makeFds(specs = []) {
  return specs.map((spec) => {
    if (spec.memfd) {
      const fd = memfdCreate("peer-region");
      writeSync(fd, spec.memfd, 0, spec.memfd.length, 0);
      return fd;
    }
    if (spec.probe) {
      const [given, kept] = socketPair();
      probes.set(spec.probe, kept);
      return given;
    }
    throw new Error(`unknown fd spec ${JSON.stringify(spec)}`);
  });
}

function sendAll(bytes, fds) {
  let sent = 0;
  while (sent < bytes.length) {
    const n = sendFds(socket, bytes.subarray(sent), sent === 0 ? fds : []);
    if (n > 0) sent += n;
  }
}

const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

// Loaded and about to run: the test connects its client now, so a slow worker start does not eat its timeouts.
parentPort.postMessage({ ready: true });

try {
  for (const step of steps) {
    switch (step.op) {
      case "recv": {
        const { bytes, fdCount } = recvMessage();
        transcript.push({ kind: "message", bytes, fdCount });
        break;
      }
      case "reply":
      case "send": {
        const bytes = Uint8Array.from(step.bytes);
        if (step.op === "reply") {
          bytes[0] = lastId & 0xff;
          bytes[1] = lastId >> 8;
        }
        const fds = makeFds(step.fds);
        if (step.chunks) {
          // Pieces with pauses between them: the client must reassemble across partial reads.
          let at = 0;
          for (const [i, size] of step.chunks.entries()) {
            sendAll(bytes.subarray(at, at + size), i === 0 ? fds : []);
            at += size;
            sleep(step.pauseMs ?? 20);
          }
          if (at < bytes.length) sendAll(bytes.subarray(at), []);
        } else {
          sendAll(bytes, fds);
        }
        for (const fd of fds) closeSync(fd);
        break;
      }
      case "sleep":
        sleep(step.ms);
        break;
      case "close":
        closeSync(socket);
        break;
      case "signal": {
        const one = new Uint8Array(8);
        one[0] = 1;
        writeSync(received[step.fd], one);
        break;
      }
      case "readFd": {
        const data = new Uint8Array(step.length);
        readSync(received[step.fd], data, 0, step.length, step.offset);
        transcript.push({ kind: "fd-data", bytes: data });
        break;
      }
      case "writeFd":
        writeSync(received[step.fd], step.bytes, 0, step.bytes.length, step.offset);
        break;
      case "probe": {
        // Every copy of the given end closed (ours after sending, the client's) reads as end of stream.
        const kept = probes.get(step.probe);
        const got = recvFds(kept, new Uint8Array(1));
        transcript.push({ kind: "probe", name: step.probe, closed: got !== null && got.bytes === 0 });
        break;
      }
      default:
        throw new Error(`unknown step ${JSON.stringify(step)}`);
    }
  }
} catch (error) {
  transcript.push({ kind: "error", message: error instanceof Error ? error.message : String(error) });
}
for (const fd of [...received, ...probes.values()]) {
  try {
    closeSync(fd);
  } catch {
    // closed by a step
  }
}
parentPort.postMessage({ transcript });
