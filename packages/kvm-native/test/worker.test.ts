import { Worker } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { packageRoot } from "../src/native.js";
import { assemble } from "./support/assemble.js";
import { kvmOk } from "./support/kvm.js";

// The addon is context-aware: a worker loads its own instance and runs a vCPU on its own thread, and the
// event-loop watcher kicks that thread (not the main one) when the worker's timers are due. The worker uses
// the raw native calls because it cannot load the TypeScript sources.
const WORKER = `
const { parentPort, workerData } = require("node:worker_threads");
const native = require(require.resolve("node-gyp-build", { paths: [workerData.root] }))(workerData.root);
const kvm = native.openDevice("/dev/kvm");
const vm = native.createVm(kvm);
const ram = new Uint8Array(native.allocateMemory(0x10000, 0x10000)[0]);
native.setUserMemoryRegion(vm, 0, 0, 0, ram);
ram.set(workerData.code, 0x1000);
const vcpu = new native.VcpuHandle(native.createVcpuFd(vm, 0), native.getVcpuMmapSize(kvm), 0);
const cs = vcpu.getSregs().cs;
vcpu.setSregs({ cs: { ...cs, base: 0, selector: 0 } });
vcpu.setRegs({ rip: 0x1000, rflags: 2 });
let fired = false, yields = 0, outs = 0;
setTimeout(() => { fired = true; }, 30);
const dispatch = { pio() { outs++; return 0; }, mmio() { return 0; } };
(function loop() {
  const r = vcpu.run(dispatch, -1, 4);
  if (r.reason !== "yield") return parentPort.postMessage({ error: r });
  yields++;
  if (fired) { vcpu.close(); return parentPort.postMessage({ yields, outs }); }
  setImmediate(loop);
})();
`;

describe.skipIf(!kvmOk)("a vCPU in a worker thread (real /dev/kvm)", () => {
  it("runs a guest in a worker while the worker's timers still fire, and tears down cleanly", async () => {
    const code = assemble(`.code16\n1: out %al, $0x10\n jmp 1b`);
    const w = new Worker(WORKER, { eval: true, workerData: { root: packageRoot, code } });
    const msg = await new Promise<{ yields?: number; outs?: number; error?: unknown }>((resolve, reject) => {
      w.once("message", resolve);
      w.once("error", reject);
    });
    await w.terminate();
    expect(msg.error).toBeUndefined();
    expect(msg.yields).toBeGreaterThan(0);
    expect(msg.outs).toBeGreaterThan(0);
  });
});
