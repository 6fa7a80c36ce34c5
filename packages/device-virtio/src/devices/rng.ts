import { randomFillSync } from "node:crypto";
import { VirtioType } from "../constants.js";
import { VirtioDevice } from "../device.js";

/** Bytes served per request at most; a guest asking for more gets a short (still valid) answer. */
const MAX_REQUEST = 64 * 1024;

/** virtio-rng (virtio 1.x, 5.4): one request queue filled from the host's CSPRNG. No features, no config. */
export class VirtioRng extends VirtioDevice {
  readonly type = VirtioType.ENTROPY;
  readonly queueSizes = [256];
  readonly features = 0n;
  readonly config = new Uint8Array(0);

  notify(_queue: number): void {
    const ctx = this.context!;
    this.drain(0, (chain) => {
      let written = 0;
      for (const s of chain.writable) {
        const n = Math.min(s.len, MAX_REQUEST - written);
        if (n <= 0) break;
        // segments(), not view(): the buffer may cross from one host RAM chunk into the next.
        for (const part of ctx.memory.segments(s.addr, n)) randomFillSync(part);
        written += n;
      }
      return written;
    });
  }
}
