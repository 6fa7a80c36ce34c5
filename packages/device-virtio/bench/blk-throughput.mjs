// virtio-blk request throughput through the device model (a simulated driver posting requests on a split ring
// and reaping the used ring, interrupts included) next to raw FileHandle reads of the same blocks with the same
// queue depth. Run after a build: `pnpm --filter @vmm/device-virtio bench`.
import { mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { recordBench } from "@vmm/bench-kit";
import { GuestMemory, MemoryLogger } from "@vmm/core";
import { FileImage, modernBarHandler, VirtioBlk, VirtioTransport } from "../dist/index.js";
// The package exports the layout as a type only; the bench is the package's own and takes the values from its build.
import { ModernLayout } from "../dist/transport/modern.js";

const IMAGE = 64 << 20;
const BLOCK = Number(process.env.BENCH_BLOCK ?? 4096);
const DEPTH = 32;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);
const QSIZE = 256;

const dir = await mkdtemp(join(tmpdir(), "vmm-bench-"));
const path = join(dir, "disk.img");
await writeFile(path, Buffer.alloc(IMAGE, 0x5a));
const blocks = IMAGE / BLOCK;
const randomBlock = () => Math.floor(Math.random() * blocks);

async function raw() {
  const fh = await open(path, "r");
  let done = 0;
  const end = Date.now() + SECONDS * 1000;
  const worker = async () => {
    const buf = Buffer.alloc(BLOCK);
    while (Date.now() < end) {
      await fh.read(buf, 0, BLOCK, randomBlock() * BLOCK);
      done++;
    }
  };
  await Promise.all(Array.from({ length: DEPTH }, worker));
  await fh.close();
  return done / SECONDS;
}

async function device() {
  const RAM = 0x100000;
  const mem = new GuestMemory([{ gpa: RAM, bytes: new Uint8Array(16 << 20) }]);
  let completions = 0;
  const sink = { msixEnabled: () => true, msixVectors: () => 2, msix: () => void completions++, intx: () => undefined };
  const blk = new VirtioBlk(await FileImage.open(path, { readonly: true }));
  const t = new VirtioTransport(blk, mem, sink, new MemoryLogger(), "bench-blk");
  const bar = modernBarHandler(t);
  const desc = RAM, avail = RAM + 16 * QSIZE, used = RAM + 0x2000;
  const reqs = RAM + 0x10000; // per slot: header 16 @ +0, status @ +16, data @ +4096*(slot+1)
  bar.write(0x14, 1, 1); bar.write(0x14, 1, 3);
  bar.write(0x08, 4, 1); bar.write(0x0c, 4, 1); // VERSION_1 only (no event idx: an interrupt per completion)
  bar.write(0x14, 1, 0xb);
  bar.write(0x16, 2, 0);
  bar.write(0x20, 4, desc); bar.write(0x28, 4, avail); bar.write(0x30, 4, used);
  bar.write(0x1a, 2, 1); bar.write(0x1c, 2, 1);
  bar.write(0x14, 1, 0xf);
  let availIdx = 0, seen = 0, done = 0, failed = 0;
  const post = (slot) => {
    const hdr = reqs + slot * 32;
    const data = reqs + 0x10000 + slot * BLOCK;
    mem.writeU32(hdr, 0); mem.writeU64(hdr + 8, BigInt((randomBlock() * BLOCK) / 512));
    const d = slot * 3;
    const w = (i, addr, len, flags, next) => { const a = desc + 16 * i; mem.writeU64(a, BigInt(addr)); mem.writeU32(a + 8, len); mem.writeU16(a + 12, flags); mem.writeU16(a + 14, next); };
    w(d, hdr, 16, 1, d + 1); w(d + 1, data, BLOCK, 3, d + 2); w(d + 2, hdr + 16, 1, 2, 0);
    mem.writeU16(avail + 4 + 2 * (availIdx % QSIZE), d);
    availIdx = (availIdx + 1) & 0xffff;
    mem.writeU16(avail + 2, availIdx);
  };
  for (let s = 0; s < DEPTH; s++) post(s);
  bar.write(ModernLayout.NOTIFY, 2, 0);
  const end = Date.now() + SECONDS * 1000;
  await new Promise((resolve) => {
    const reap = () => {
      const idx = mem.readU16(used + 2);
      let repost = false;
      while (seen !== idx) {
        const head = mem.readU32(used + 4 + 8 * (seen % QSIZE));
        seen = (seen + 1) & 0xffff;
        if (mem.readU8(reqs + (head / 3) * 32 + 16) !== 0 || mem.readU8(reqs + 0x10000 + (head / 3) * BLOCK) !== 0x5a) failed++;
        done++;
        if (Date.now() < end) { post(head / 3); repost = true; }
      }
      if (repost) bar.write(ModernLayout.NOTIFY, 2, 0);
      if (Date.now() >= end && blk.pendingRequests === 0) resolve(undefined);
      else setImmediate(reap);
    };
    reap();
  });
  await blk.close();
  if (failed) throw new Error(`${failed} requests failed`);
  return { rate: done / SECONDS, interrupts: completions };
}

try {
  // Interleave two rounds of each so page cache and JIT warm-up do not favour either side; keep the best.
  let r = 0, d = { rate: 0, interrupts: 0 };
  for (let round = 0; round < 2; round++) {
    r = Math.max(r, await raw());
    const x = await device();
    if (x.rate > d.rate) d = x;
  }
  console.log(`virtio-blk random ${BLOCK}-byte reads, queue depth ${DEPTH}, ${SECONDS}s each, 64 MiB image (page cache)`);
  console.log(`  raw FileHandle.read : ${r.toFixed(0).padStart(8)} req/s`);
  console.log(`  through virtio-blk  : ${d.rate.toFixed(0).padStart(8)} req/s  (${d.interrupts} MSI-X interrupts)`);
  console.log(`  ratio device/raw    : ${(d.rate / r).toFixed(2)}`);
  recordBench({
    package: "@vmm/device-virtio",
    name: "blk-throughput",
    title: `virtio-blk device model (simulated driver, no guest), random ${BLOCK}-byte reads at queue depth ${DEPTH}`,
    rows: [
      {
        metric: `rand ${BLOCK} B QD${DEPTH} through the device model`,
        value: d.rate,
        unit: "req/s",
        reference: { name: "raw FileHandle.read", value: r },
      },
    ],
  });
} finally {
  await rm(dir, { recursive: true, force: true });
}
