// Cost of finding what changed for one incremental update of a 1920x1080x32 screen where the guest rewrote one
// 64x64 block: with KVM's dirty log (convert and compare only scanlines on written pages) versus without one
// (convert the whole picture and compare every tile). Both measured here, side by side; the ratio is the point.
import { recordBench } from "@vmm/bench-kit";
import { FrameDiffer, ScreenTracker, VesaScreen, VbeEnable, VbeIndex } from "../dist/index.js";

const W = 1920, H = 1080, ROUNDS = 40;

function setup(logged) {
  const screen = new VesaScreen(new Uint8Array(16 << 20));
  // Stands in for KVM_GET_DIRTY_LOG: pages written since the last call.
  let pending = new Uint8Array(screen.dirty.bitmapBytes);
  if (logged)
    screen.dirty.setSource(() => {
      const p = pending;
      pending = new Uint8Array(p.length);
      return p;
    });
  for (const [i, v] of [[VbeIndex.XRES, W], [VbeIndex.YRES, H], [VbeIndex.BPP, 32], [VbeIndex.ENABLE, VbeEnable.ENABLED]]) screen.vbe.write(i, v);
  const tracker = new ScreenTracker(screen);
  const differ = new FrameDiffer();
  const first = tracker.update();
  differ.markSent(first.frame, { x: 0, y: 0, width: W, height: H });
  const write = (round) => {
    const x0 = (round * 64) % (W - 64), y0 = (round * 37) % (H - 64);
    for (let y = y0; y < y0 + 64; y++) {
      const at = (y * W + x0) * 4;
      screen.fb.fill(round & 0xff, at, at + 256);
      for (let p = at >> 12; p <= (at + 255) >> 12; p++) pending[p >> 3] |= 1 << (p & 7);
    }
  };
  const step = () => {
    const change = tracker.update();
    const rects = change ? differ.changes(change.frame, change.rows) : [];
    for (const r of rects) differ.markSent(change.frame, r);
    return rects.length;
  };
  return { write, step };
}

function measure(logged) {
  const s = setup(logged);
  let found = 0;
  const t0 = performance.now();
  for (let r = 1; r <= ROUNDS; r++) {
    s.write(r);
    found += s.step();
  }
  const ms = (performance.now() - t0) / ROUNDS;
  if (found < ROUNDS) throw new Error(`only ${found} changes found in ${ROUNDS} rounds`);
  return ms;
}

measure(true), measure(false); // warm up
const logged = measure(true);
const full = measure(false);
console.log(`incremental update, 1920x1080x32, one 64x64 block changed:`);
console.log(`  with dirty log    ${logged.toFixed(2)} ms`);
console.log(`  without dirty log ${full.toFixed(2)} ms`);
console.log(`  ratio (without / with): ${(full / logged).toFixed(1)}x`);

recordBench({
  package: "@vmm/device-vesa",
  name: "updates",
  title: "one incremental update of a 1920x1080x32 screen with one 64x64 block changed",
  rows: [{ metric: "update with dirty log", value: logged, unit: "ms", reference: { name: "without dirty log", value: full } }],
});
